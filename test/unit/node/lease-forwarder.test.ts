// Lease keepalive and time-to-live forwarded to the leader over real peer transports on loopback, while leadership
// moves: the leader's role is the test's input (no Raft here), the transports, HTTP and lease tables are real.
// A frozen leader (it accepts the call and never answers, like a SIGSTOPped process) must not hold a call until
// its deadline once another member leads, and a member elected while its own call waits serves it itself.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { silentLogger } from "../../../src/log.js";
import { LeaseForwarder } from "../../../src/store/node/lease-forwarder.js";
import type { NodeId } from "../../../src/store/raft/types.js";
import { PeerTransport } from "../../../src/store/transport/transport.js";
import { TestStore } from "../mvcc/helpers.js";

const CLUSTER_ID = 42;
const LEASE_ID = 7;
/** Long enough that a call which waits for it fails the test only by the error it ends with, not by a hang. */
const TIMEOUT_MS = 3_000;

interface Member {
  id: NodeId;
  transport: PeerTransport;
  url: string;
  store: TestStore;
  forwarder: LeaseForwarder;
  leading: boolean;
}

/** Three members that share a view of who leads (`view.leader`); each holds the lease (it is replicated state). */
async function threeMembers(view: { leader: NodeId }): Promise<Member[]> {
  const members: Member[] = [];
  for (const id of [1, 2, 3]) {
    const transport = new PeerTransport({
      clusterId: CLUSTER_ID,
      memberId: id,
      logger: silentLogger(),
      onMessages: () => {},
      onUnreachable: () => {},
      onSnapshotResult: () => {},
      acceptsFrom: () => true,
      probe: () => ({ clusterId: CLUSTER_ID, memberId: id }),
      requestTimeoutMs: TIMEOUT_MS,
    });
    const url = await transport.listen("http://127.0.0.1:0");
    const store = new TestStore();
    store.run({ type: "leaseGrant", request: { ID: LEASE_ID, TTL: 10 } });
    const member: Member = { id, transport, url, store, leading: false, forwarder: undefined as never };
    member.forwarder = new LeaseForwarder({
      kv: store.store,
      transport,
      self: id,
      isLeader: () => member.leading,
      leader: () => view.leader,
      timeoutMs: TIMEOUT_MS,
    });
    members.push(member);
  }
  for (const a of members) for (const b of members) a.transport.setPeer(b.id, b.url);
  return members;
}

/** The member leads now: like ReplicaNode on its election, its lease table starts keeping time. */
function elect(member: Member, view: { leader: NodeId }): void {
  member.store.store.promoteLeases(0);
  member.leading = true;
  view.leader = member.id;
}

/** A leader that accepts forwarded calls and never answers them (a stopped process still holds its socket open). */
function freeze(member: Member): void {
  const never = () => new Promise<never>(() => {});
  member.transport.handle("leaseKeepAlive", never);
  member.transport.handle("leaseTimeToLive", never);
}

async function closeAll(members: Member[]): Promise<void> {
  await Promise.all(members.map((m) => m.transport.close()));
}

test("a call waiting on a frozen leader is sent to the new leader as soon as leadership moves", async () => {
  const view = { leader: 0 };
  const members = await threeMembers(view);
  const [frozen, next, asker] = members as [Member, Member, Member];
  try {
    for (const m of members) m.forwarder.serve();
    elect(frozen, view);
    freeze(frozen);
    const renewal = asker.forwarder.keepAlive(LEASE_ID);
    const ttl = asker.forwarder.timeToLive({ ID: LEASE_ID, keys: true });
    setTimeout(() => {
      frozen.leading = false;
      elect(next, view);
    }, 300);
    const renewed = await renewal;
    assert.equal([renewed.ID, renewed.TTL], [LEASE_ID, 10]);
    const remaining = await ttl;
    assert.equal([remaining.ID, remaining.grantedTTL], [LEASE_ID, 10]);
    assert.ok(remaining.TTL > 0 && remaining.TTL <= 10, `remaining ${remaining.TTL}`);
  } finally {
    await closeAll(members);
  }
});

test("a member elected while its own call waits on the old leader serves the call itself", async () => {
  const view = { leader: 0 };
  const members = await threeMembers(view);
  const [frozen, , asker] = members as [Member, Member, Member];
  try {
    for (const m of members) m.forwarder.serve();
    elect(frozen, view);
    freeze(frozen);
    const renewal = asker.forwarder.keepAlive(LEASE_ID);
    setTimeout(() => {
      frozen.leading = false;
      elect(asker, view);
    }, 300);
    const renewed = await renewal;
    assert.equal([renewed.ID, renewed.TTL], [LEASE_ID, 10]);
  } finally {
    await closeAll(members);
  }
});

test("a new leader still applying the previous term makes callers wait, not tells them the lease is gone", async () => {
  const view = { leader: 0 };
  const members = await threeMembers(view);
  const [oldLeader, newLeader, asker] = members as [Member, Member, Member];
  try {
    for (const m of members) m.forwarder.serve();
    elect(oldLeader, view);
    // Lease 8 was granted just before the election: applied on the asker, not yet on the new leader.
    asker.store.run({ type: "leaseGrant", request: { ID: 8, TTL: 6 } });
    oldLeader.leading = false;
    newLeader.leading = true; // elected, but its lease table does not keep time yet
    view.leader = newLeader.id;
    const renewal = asker.forwarder.keepAlive(8);
    const ttl = newLeader.forwarder.timeToLive({ ID: 8 });
    setTimeout(() => {
      newLeader.store.run({ type: "leaseGrant", request: { ID: 8, TTL: 6 } });
      newLeader.store.store.promoteLeases(0); // what ReplicaNode does once the earlier terms are applied
    }, 300);
    const renewed = await renewal;
    assert.equal([renewed.ID, renewed.TTL], [8, 6], "renewed, not 'lease not found'");
    assert.equal([(await ttl).ID, (await ttl).grantedTTL], [8, 6]);
  } finally {
    await closeAll(members);
  }
});

test("the leader's refusal of an unknown lease still reaches the caller, and a leader answers locally", async () => {
  const view = { leader: 0 };
  const members = await threeMembers(view);
  const [leader, follower] = members as [Member, Member, Member];
  try {
    for (const m of members) m.forwarder.serve();
    elect(leader, view);
    const missing = await follower.forwarder.keepAlive(999).catch((error: Error) => error.message);
    assert.is(missing, "etcdserver: requested lease not found");
    assert.is((await follower.forwarder.timeToLive({ ID: 999 })).TTL, -1);
    assert.is((await leader.forwarder.keepAlive(LEASE_ID)).TTL, 10);
  } finally {
    await closeAll(members);
  }
});

test.run();
