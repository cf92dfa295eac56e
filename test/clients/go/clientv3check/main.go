// Command clientv3check drives an etcd v3 server with the Go etcd client
// library (clientv3 of etcd 3.4) through KV with options, Txn, Watch, Lease,
// the concurrency recipes (session, mutex, election), Compact, MemberList and
// Status. It checks what etcd 3.4 guarantees as it goes and prints one JSON
// line of results; on any unexpected answer it prints a clear message on
// stderr and exits 1.
//
// Revisions are printed relative to the first write, and ids (leases, members)
// only as facts about them, so that two fresh servers give equal output.
//
// Usage: clientv3check -endpoints 127.0.0.1:2379[,...]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/clientv3/concurrency"
	"go.etcd.io/etcd/etcdserver/api/v3rpc/rpctypes"
	"go.etcd.io/etcd/mvcc/mvccpb"
)

// overallTimeout bounds the whole run, so a hang becomes a failure.
const overallTimeout = 60 * time.Second

// fail reports what went wrong and exits non-zero.
func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "clientv3check: "+format+"\n", args...)
	os.Exit(1)
}

// must fails on err, naming the step.
func must(step string, err error) {
	if err != nil {
		fail("%s: %v", step, err)
	}
}

// expect fails unless cond, naming the step and what was seen.
func expect(cond bool, step string, seen interface{}) {
	if !cond {
		fail("%s: unexpected %+v", step, seen)
	}
}

// kvText renders key=value pairs in order.
func kvText(kvs []*mvccpb.KeyValue) []string {
	out := make([]string, 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, string(kv.Key)+"="+string(kv.Value))
	}
	return out
}

func main() {
	endpoints := flag.String("endpoints", "", "comma-separated host:port list of the server")
	flag.Parse()
	if *endpoints == "" {
		fail("-endpoints is required")
	}
	eps := strings.Split(*endpoints, ",")
	ctx, cancel := context.WithTimeout(context.Background(), overallTimeout)
	defer cancel()

	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second})
	must("connect", err)
	defer cli.Close()

	res := map[string]interface{}{}
	base := kvChecks(ctx, cli, res)
	rel := func(rev int64) int64 { return rev - base }
	txnChecks(ctx, cli, res, rel)
	watchChecks(ctx, cli, res, rel)
	leaseChecks(ctx, cli, res)
	concurrencyChecks(ctx, cli, res)
	compactChecks(ctx, cli, res, rel)
	clusterChecks(ctx, cli, eps[0], res)

	line, err := json.Marshal(res)
	must("encode results", err)
	fmt.Println(string(line))
}

// kvChecks covers Put/Get/Delete with prevKV, prefix, sort, limit, count-only
// and reads at an older revision; returns the revision of the first write.
func kvChecks(ctx context.Context, cli *clientv3.Client, res map[string]interface{}) int64 {
	first, err := cli.Put(ctx, "a", "1")
	must("put a", err)
	base := first.Header.Revision
	for _, k := range []string{"k/1", "k/2", "k/3"} {
		_, err := cli.Put(ctx, k, "v"+k[2:])
		must("put "+k, err)
	}
	prev, err := cli.Put(ctx, "k/1", "v1b", clientv3.WithPrevKV())
	must("put k/1 prevKV", err)
	expect(prev.PrevKv != nil && string(prev.PrevKv.Value) == "v1", "put prevKV", prev.PrevKv)
	res["putPrevKV"] = string(prev.PrevKv.Value)
	res["putPrevKVVersion"] = prev.PrevKv.Version

	sorted, err := cli.Get(ctx, "k/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(2))
	must("get prefix sort limit", err)
	expect(len(sorted.Kvs) == 2 && sorted.More && sorted.Count == 3, "get prefix sort limit", sorted)
	res["getSortedLimited"] = kvText(sorted.Kvs)
	res["getMore"] = sorted.More
	res["getCount"] = sorted.Count

	byValue, err := cli.Get(ctx, "k/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortAscend), clientv3.WithKeysOnly())
	must("get sort by mod revision keys only", err)
	res["getByModRevKeys"] = kvText(byValue.Kvs)

	old, err := cli.Get(ctx, "k/1", clientv3.WithRev(base+1))
	must("get at revision", err)
	expect(len(old.Kvs) == 1 && string(old.Kvs[0].Value) == "v1", "get at revision", old.Kvs)
	res["getAtRev"] = kvText(old.Kvs)

	count, err := cli.Get(ctx, "k/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	must("get count only", err)
	expect(count.Count == 3 && len(count.Kvs) == 0, "get count only", count)

	fromKey, err := cli.Get(ctx, "k/2", clientv3.WithFromKey())
	must("get from key", err)
	res["getFromKey"] = kvText(fromKey.Kvs)

	del, err := cli.Delete(ctx, "k/2", clientv3.WithPrevKV())
	must("delete k/2 prevKV", err)
	expect(del.Deleted == 1 && len(del.PrevKvs) == 1, "delete prevKV", del)
	res["deletePrevKVs"] = kvText(del.PrevKvs)
	delAll, err := cli.Delete(ctx, "k/", clientv3.WithPrefix())
	must("delete prefix", err)
	expect(delAll.Deleted == 2, "delete prefix", delAll)
	res["deletePrefixDeleted"] = delAll.Deleted
	gone, err := cli.Get(ctx, "k/", clientv3.WithPrefix())
	must("get after delete", err)
	expect(gone.Count == 0, "get after delete", gone)
	res["revAfterKV"] = gone.Header.Revision - base
	return base
}

// txnChecks runs a transaction whose compares hold and one whose compares fail.
func txnChecks(ctx context.Context, cli *clientv3.Client, res map[string]interface{}, rel func(int64) int64) {
	ok, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.Value("a"), "=", "1"), clientv3.Compare(clientv3.Version("a"), ">", 0)).
		Then(clientv3.OpPut("a", "2"), clientv3.OpGet("a")).
		Else(clientv3.OpGet("a")).
		Commit()
	must("txn (compares hold)", err)
	expect(ok.Succeeded && len(ok.Responses) == 2, "txn (compares hold)", ok)
	got := ok.Responses[1].GetResponseRange()
	expect(got != nil && len(got.Kvs) == 1 && string(got.Kvs[0].Value) == "2", "txn then-get", got)
	res["txnSucceeded"] = ok.Succeeded
	res["txnThenGet"] = kvText(got.Kvs)
	res["txnThenModRev"] = rel(got.Kvs[0].ModRevision)

	no, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision("a"), "<", got.Kvs[0].ModRevision), clientv3.Compare(clientv3.CreateRevision("missing"), "=", 0)).
		Then(clientv3.OpDelete("a")).
		Else(clientv3.OpGet("a"), clientv3.OpPut("t", "x", clientv3.WithPrevKV())).
		Commit()
	must("txn (a compare fails)", err)
	expect(!no.Succeeded && len(no.Responses) == 2, "txn (a compare fails)", no)
	elseGet := no.Responses[0].GetResponseRange()
	expect(elseGet != nil && len(elseGet.Kvs) == 1 && string(elseGet.Kvs[0].Value) == "2", "txn else-get", elseGet)
	res["txnElseSucceeded"] = no.Succeeded
	res["txnElseGet"] = kvText(elseGet.Kvs)
	res["txnElseRev"] = rel(no.Header.Revision)
}

// watchChecks watches a prefix with prevKV and sees a put, an update and a delete in order.
func watchChecks(ctx context.Context, cli *clientv3.Client, res map[string]interface{}, rel func(int64) int64) {
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	wch := cli.Watch(wctx, "w/", clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithCreatedNotify())
	created, open := <-wch
	expect(open && created.Created && created.Err() == nil, "watch created", created)

	_, err := cli.Put(ctx, "w/a", "1")
	must("put w/a", err)
	_, err = cli.Put(ctx, "other", "x")
	must("put other", err)
	_, err = cli.Put(ctx, "w/a", "2")
	must("put w/a again", err)
	_, err = cli.Delete(ctx, "w/a")
	must("delete w/a", err)

	var events []string
	for len(events) < 3 {
		select {
		case wr, open := <-wch:
			expect(open && wr.Err() == nil, "watch response", wr)
			for _, ev := range wr.Events {
				prev := "-"
				if ev.PrevKv != nil {
					prev = string(ev.PrevKv.Value)
				}
				events = append(events, fmt.Sprintf("%s %s=%s prev=%s rev=%d", ev.Type, ev.Kv.Key, ev.Kv.Value, prev, rel(ev.Kv.ModRevision)))
			}
		case <-ctx.Done():
			fail("watch: only %d of 3 events before the deadline: %v", len(events), events)
		}
	}
	expect(len(events) == 3, "watch events", events)
	res["watchEvents"] = events
}

// leaseChecks grants a lease, keeps it alive once, attaches a key, reads its
// time to live with keys, and revokes it (removing the key).
func leaseChecks(ctx context.Context, cli *clientv3.Client, res map[string]interface{}) {
	grant, err := cli.Grant(ctx, 60)
	must("lease grant", err)
	expect(grant.ID != 0 && grant.TTL == 60, "lease grant", grant)
	ka, err := cli.KeepAliveOnce(ctx, grant.ID)
	must("lease keepalive once", err)
	expect(ka.ID == grant.ID && ka.TTL == 60, "lease keepalive once", ka)
	_, err = cli.Put(ctx, "l/k", "v", clientv3.WithLease(grant.ID))
	must("put with lease", err)
	leased, err := cli.Get(ctx, "l/k")
	must("get leased key", err)
	expect(len(leased.Kvs) == 1 && clientv3.LeaseID(leased.Kvs[0].Lease) == grant.ID, "leased key", leased.Kvs)
	ttl, err := cli.TimeToLive(ctx, grant.ID, clientv3.WithAttachedKeys())
	must("lease time to live", err)
	expect(ttl.ID == grant.ID && ttl.GrantedTTL == 60 && ttl.TTL > 0 && ttl.TTL <= 60 && len(ttl.Keys) == 1, "lease time to live", ttl)
	res["leaseGrantedTTL"] = ttl.GrantedTTL
	res["leaseKeys"] = []string{string(ttl.Keys[0])}
	leases, err := cli.Leases(ctx)
	must("lease list", err)
	res["leaseCount"] = len(leases.Leases)

	_, err = cli.Revoke(ctx, grant.ID)
	must("lease revoke", err)
	after, err := cli.Get(ctx, "l/k")
	must("get after revoke", err)
	expect(after.Count == 0, "key after revoke", after)
	ttlAfter, err := cli.TimeToLive(ctx, grant.ID)
	must("time to live after revoke", err)
	res["leaseTTLAfterRevoke"] = ttlAfter.TTL
	_, err = cli.Revoke(ctx, grant.ID)
	expect(err == rpctypes.ErrLeaseNotFound, "revoke twice", err)
	res["revokeTwiceError"] = err.Error()
	_, err = cli.KeepAliveOnce(ctx, grant.ID)
	expect(err == rpctypes.ErrLeaseNotFound, "keepalive after revoke", err)
}

// concurrencyChecks takes a mutex (a second session waits while it is held),
// then campaigns, proclaims and resigns in an election.
func concurrencyChecks(ctx context.Context, cli *clientv3.Client, res map[string]interface{}) {
	s1, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
	must("session 1", err)
	defer s1.Close()
	s2, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
	must("session 2", err)
	defer s2.Close()

	m1 := concurrency.NewMutex(s1, "lock/m")
	must("mutex lock", m1.Lock(ctx))
	expect(strings.HasPrefix(m1.Key(), "lock/m/"), "mutex key", m1.Key())
	m2 := concurrency.NewMutex(s2, "lock/m")
	acquired := make(chan error, 1)
	go func() { acquired <- m2.Lock(ctx) }()
	// The waiter has asked once its key exists; it must still be waiting.
	waitKeys(ctx, cli, "lock/m/", 2)
	select {
	case err := <-acquired:
		fail("second mutex got the lock while it was held (err %v)", err)
	default:
	}
	must("mutex unlock", m1.Unlock(ctx))
	must("second mutex lock", <-acquired)
	owner, err := cli.Txn(ctx).If(m2.IsOwner()).Commit()
	must("mutex owner txn", err)
	expect(owner.Succeeded, "second mutex is owner", owner)
	must("second mutex unlock", m2.Unlock(ctx))
	left, err := cli.Get(ctx, "lock/m/", clientv3.WithPrefix())
	must("get lock keys", err)
	res["mutexKeysAfterUnlock"] = left.Count
	res["mutexHandover"] = true

	e := concurrency.NewElection(s1, "elect/e")
	_, err = e.Leader(ctx)
	expect(err == concurrency.ErrElectionNoLeader, "leader before campaign", err)
	must("campaign", e.Campaign(ctx, "p1"))
	leader, err := e.Leader(ctx)
	must("leader", err)
	res["electionLeader"] = string(leader.Kvs[0].Value)
	must("proclaim", e.Proclaim(ctx, "p1b"))
	leader, err = e.Leader(ctx)
	must("leader after proclaim", err)
	res["electionLeaderAfterProclaim"] = string(leader.Kvs[0].Value)
	must("resign", e.Resign(ctx))
	_, err = e.Leader(ctx)
	expect(err == concurrency.ErrElectionNoLeader, "leader after resign", err)
	res["electionAfterResign"] = err.Error()
}

// waitKeys polls until `n` keys exist under prefix.
func waitKeys(ctx context.Context, cli *clientv3.Client, prefix string, n int64) {
	for {
		r, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		must("count "+prefix, err)
		if r.Count == n {
			return
		}
		select {
		case <-ctx.Done():
			fail("waiting for %d keys under %s: %v", n, prefix, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// compactChecks compacts and reads below the compacted revision.
func compactChecks(ctx context.Context, cli *clientv3.Client, res map[string]interface{}, rel func(int64) int64) {
	p1, err := cli.Put(ctx, "c", "1")
	must("put c", err)
	p2, err := cli.Put(ctx, "c", "2")
	must("put c again", err)
	_, err = cli.Compact(ctx, p2.Header.Revision, clientv3.WithCompactPhysical())
	must("compact", err)
	_, err = cli.Get(ctx, "c", clientv3.WithRev(p1.Header.Revision))
	expect(errors.Is(err, rpctypes.ErrCompacted), "get below the compacted revision", err)
	res["compactedReadError"] = err.Error()
	at, err := cli.Get(ctx, "c", clientv3.WithRev(p2.Header.Revision))
	must("get at the compacted revision", err)
	res["getAtCompactRev"] = kvText(at.Kvs)
	_, err = cli.Compact(ctx, p1.Header.Revision)
	expect(errors.Is(err, rpctypes.ErrCompacted), "compact again below", err)
	_, err = cli.Compact(ctx, p2.Header.Revision+1000)
	expect(errors.Is(err, rpctypes.ErrFutureRev), "compact a future revision", err)
	res["compactFutureError"] = err.Error()
	res["compactRev"] = rel(p2.Header.Revision)
}

// clusterChecks reads the member list and the endpoint status.
func clusterChecks(ctx context.Context, cli *clientv3.Client, endpoint string, res map[string]interface{}) {
	ml, err := cli.MemberList(ctx)
	must("member list", err)
	expect(len(ml.Members) == 1, "member list", ml.Members)
	m := ml.Members[0]
	served := false
	for _, u := range m.ClientURLs {
		served = served || u == "http://"+endpoint
	}
	expect(m.ID != 0 && m.Name != "" && len(m.PeerURLs) == 1 && served, "member", m)
	res["memberCount"] = len(ml.Members)

	st, err := cli.Status(ctx, endpoint)
	must("status", err)
	expect(st.Leader == st.Header.MemberId && st.Leader == m.ID, "status leader", st)
	expect(st.DbSize > 0 && st.RaftIndex > 0 && st.RaftTerm > 0, "status sizes", st)
	res["statusVersion"] = st.Version
	res["statusIsLeader"] = true
}
