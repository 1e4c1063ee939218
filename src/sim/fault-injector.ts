// The fault schedule of a run, drawn tick by tick from the seed's profile: partitions (symmetric or one-way) that
// heal, crashes (some in the middle of a Ready), long pauses, and an operator that changes membership and
// transfers leadership while all that goes on.
import { type ConfChange, type NodeId, ProposalDroppedError } from "../store/raft/index.js";
import type { SimRandom } from "./random.js";
import type { Simulation } from "./simulation.js";

const MAX_NODE_ID = 16;

export class FaultInjector {
  constructor(private readonly sim: Simulation) {}

  inject(): void {
    const s = this.sim;
    const r = s.faultRandom;
    const p = s.profile;
    if (s.partitionHealAt >= 0 && s.now >= s.partitionHealAt) {
      s.network.healPartitions();
      s.partitionHealAt = -1;
      s.log("partition healed");
    } else if (s.partitionHealAt < 0 && p.partitionRate > 0 && r.chance(p.partitionRate)) {
      this.partition(r);
    }
    if (p.crashRate > 0 && r.chance(p.crashRate)) this.crashOne(r);
    if (p.pauseRate > 0 && r.chance(p.pauseRate)) {
      const candidates = [...s.nodes.values()].filter((n) => n.raft !== null && n.pausedUntil < 0);
      if (candidates.length > 0) {
        const node = r.pick(candidates);
        node.pausedUntil = s.now + r.intBetween(2 * p.electionTick, 40 * p.electionTick);
        s.stats.pauses++;
        s.log(`node ${node.id} pauses until ${node.pausedUntil}`);
      }
    }
    if (p.membershipRate > 0 && r.chance(p.membershipRate)) this.changeMembership(r);
    if (p.transferRate > 0 && r.chance(p.transferRate)) this.transferLeadership(r);
  }

  partition(r: SimRandom): void {
    const s = this.sim;
    const ids = [...s.nodes.keys()];
    if (ids.length < 2) return;
    r.shuffle(ids);
    const cut = r.intBetween(1, ids.length - 1);
    const oneWay = r.chance(s.profile.oneWayPartitionShare);
    s.network.partition(ids.slice(0, cut), ids.slice(cut), oneWay);
    s.partitionHealAt = s.now + r.intBetween(s.profile.electionTick, 30 * s.profile.electionTick);
    s.stats.partitions++;
    s.log(`partition ${oneWay ? "one-way " : ""}${ids.slice(0, cut)} | ${ids.slice(cut)} until ${s.partitionHealAt}`);
  }

  crashOne(r: SimRandom): void {
    const s = this.sim;
    const candidates = [...s.nodes.values()].filter((n) => n.raft !== null);
    if (candidates.length === 0) return;
    // Prefer a node with writes not yet fsynced (a vote, a commit index): losing them is what tests durability.
    const exposed = candidates.filter((n) => n.disk.unsyncedWrites > 0);
    const node = r.pick(exposed.length > 0 && r.chance(0.7) ? exposed : candidates);
    s.stats.crashes++;
    s.restartAt.set(node.id, s.now + r.intBetween(1, 30 * s.profile.electionTick));
    s.clients.nodeCrashed(node.id);
    if (r.chance(s.profile.crashMidReadyShare)) {
      node.crashAtNextReady = true; // dies during its next Ready, after persisting and before sending
      s.log(`node ${node.id} will crash mid-Ready`);
    } else {
      node.crash();
      s.log(`node ${node.id} crashes`);
    }
  }

  changeMembership(r: SimRandom): void {
    const s = this.sim;
    const leader = s.leaderNode();
    if (leader === null) return;
    const cs = leader.raft!.confState();
    const fresh = s.nextId <= MAX_NODE_ID ? s.nextId : 0;
    const choices: ConfChange["type"][] = [];
    if (fresh > 0 && cs.learners.length < 2) choices.push("addLearner");
    if (fresh > 0 && cs.voters.length < 7 && r.chance(0.2)) choices.push("addVoter");
    if (cs.learners.length > 0 && cs.voters.length < 7) choices.push("promoteLearner");
    if (cs.voters.length > 1 || cs.learners.length > 0) choices.push("removeNode");
    // Changes nothing in the configuration, but takes the single pending-change slot like the others.
    if (r.chance(0.2)) choices.push("updateNode");
    if (choices.length === 0) return;
    const type = r.pick(choices);
    let nodeId: NodeId;
    if (type === "addLearner" || type === "addVoter") nodeId = fresh;
    else if (type === "promoteLearner") nodeId = r.pick(cs.learners);
    else if (type === "updateNode") nodeId = r.pick([...cs.voters, ...cs.learners]);
    else nodeId = r.pick(cs.voters.length > 1 ? [...cs.voters, ...cs.learners] : cs.learners);
    try {
      leader.raft!.proposeConfChange({ type, nodeId, context: new Uint8Array(0) });
    } catch (error) {
      if (error instanceof ProposalDroppedError) return;
      throw error;
    }
    s.stats.membershipChanges++;
    s.log(`leader ${leader.id} proposes ${type} ${nodeId}`);
    if (nodeId === fresh) {
      s.nextId++;
      s.spawn(fresh, [], []);
    }
    leader.drain();
  }

  transferLeadership(r: SimRandom): void {
    const s = this.sim;
    const leader = s.leaderNode();
    if (leader === null) return;
    const voters = [...leader.raft!.voters].filter((id) => id !== leader.id);
    if (voters.length === 0) return;
    const to = r.pick(voters);
    try {
      leader.raft!.transferLeadership(to);
    } catch (error) {
      if (error instanceof ProposalDroppedError) return;
      throw error;
    }
    s.log(`leader ${leader.id} transfers to ${to}`);
    leader.drain();
  }
}
