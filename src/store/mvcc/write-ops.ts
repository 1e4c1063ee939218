// Executes put / deleteRange / txn against the key space inside one write batch (one revision). Every check
// that can fail runs BEFORE the first change (planTxn, checkPut), so a failed request leaves the store untouched.
import assert from "node:assert";
import type {
  DeleteRangeRequest,
  DeleteRangeResponse,
  KeyValue,
  PutRequest,
  PutResponse,
  RequestOp,
  ResponseHeader,
  ResponseOp,
  TxnRequest,
  TxnResponse,
} from "./commands.js";
import {
  KeyNotFoundError,
  KeyNotProvidedError,
  LeaseNotFoundError,
  LeaseProvidedError,
  ValueProvidedError,
} from "./errors.js";
import type { KeyRevision, KeySpace } from "./key-space.js";
import { keyValueOf } from "./kv-convert.js";
import type { LeaseTable } from "./leases.js";
import { checkTxnRange, runRange } from "./range.js";
import { toBinaryKey, toBinaryRangeEnd } from "./ranges.js";
import { evaluateCompare } from "./txn-check.js";

const EMPTY = new Uint8Array(0);

/** The changes of one revision being written. */
export class WriteBatch {
  readonly changes: KeyRevision[] = [];
  constructor(
    readonly revision: number,
    readonly header: ResponseHeader,
  ) {}

  /** The revision reads inside this batch use: the pending one once something was written (read-your-writes). */
  readRevision(): number {
    return this.changes.length > 0 ? this.revision : this.revision - 1;
  }
}

export class WriteOps {
  constructor(
    private readonly space: KeySpace,
    private readonly leases: LeaseTable,
  ) {}

  /**
   * Decides every branch of a txn (nested ones included) against the state BEFORE it runs, as etcd does, and
   * checks the ops on the chosen paths. Returns the decisions in execution order, for `txn` to follow: a nested
   * compare is never re-evaluated against the txn's own writes, so what was checked is what runs.
   * etcd checks in two passes over the chosen ops, every put first and then every range, so when a txn holds a
   * bad put and a bad range, the put's error wins wherever it sits.
   */
  planTxn(txn: TxnRequest, atRevision: number): boolean[] {
    const decisions: boolean[] = [];
    const chosen: RequestOp[] = [];
    this.planInto(txn, atRevision, decisions, chosen);
    for (const op of chosen) if ("request_put" in op) this.checkPut(op.request_put, atRevision);
    for (const op of chosen) {
      if ("request_range" in op) checkTxnRange(this.space, op.request_range, atRevision);
    }
    return decisions;
  }

  /** Records the branch decisions and the ops (nested txns flattened) that will run, in execution order. */
  private planInto(txn: TxnRequest, atRevision: number, decisions: boolean[], chosen: RequestOp[]): void {
    const succeeded = this.chooseBranch(txn, atRevision);
    decisions.push(succeeded);
    for (const op of (succeeded ? txn.success : txn.failure) ?? []) {
      if ("request_txn" in op) this.planInto(op.request_txn, atRevision, decisions, chosen);
      else if ("request_delete_range" in op && op.request_delete_range.key.length === 0) {
        throw new KeyNotProvidedError();
      } else chosen.push(op);
    }
  }

  /**
   * The checks a put must pass before anything is written. etcd orders the last two differently by context: a
   * top-level put looks its lease up before it reads the previous key (`topLevel`), a put inside a txn
   * (checkRequestPut) reads the previous key first; a request failing both gets a different error in each case.
   */
  checkPut(request: PutRequest, atRevision: number, topLevel = false): void {
    if (request.key.length === 0) throw new KeyNotProvidedError();
    const lease = request.lease ?? 0;
    if (request.ignore_value && (request.value?.length ?? 0) > 0) throw new ValueProvidedError();
    if (request.ignore_lease && lease !== 0) throw new LeaseProvidedError();
    const leaseMissing = lease !== 0 && this.leases.get(lease) === undefined;
    if (topLevel && leaseMissing) throw new LeaseNotFoundError();
    if (request.ignore_value || request.ignore_lease) {
      if (this.space.get(toBinaryKey(request.key), atRevision) === undefined) throw new KeyNotFoundError();
    }
    if (leaseMissing) throw new LeaseNotFoundError();
  }

  chooseBranch(txn: TxnRequest, atRevision: number): boolean {
    return (txn.compare ?? []).every((c) => evaluateCompare(this.space, c, atRevision));
  }

  put(request: PutRequest, batch: WriteBatch): PutResponse {
    const key = toBinaryKey(request.key);
    const previous = this.space.get(key, batch.readRevision());
    const value =
      request.ignore_value && previous !== undefined ? previous.value! : toBinaryKey(request.value ?? EMPTY);
    const lease = request.ignore_lease ? (previous?.lease ?? 0) : (request.lease ?? 0);
    if (previous !== undefined && previous.lease !== lease) this.leases.detach(previous.lease, key);
    const record = this.space.put(key, value, lease, batch.revision);
    this.leases.attach(lease, key);
    batch.changes.push(record);
    const response: PutResponse = { header: batch.header };
    if (request.prev_kv && previous !== undefined) response.prev_kv = keyValueOf(previous, false);
    return response;
  }

  deleteRange(request: DeleteRangeRequest, batch: WriteBatch): DeleteRangeResponse {
    const start = toBinaryKey(request.key);
    const end = toBinaryRangeEnd(request.key, request.range_end);
    const victims: KeyRevision[] = [];
    if (end === undefined) {
      const kv = this.space.get(start, batch.readRevision());
      if (kv !== undefined) victims.push(kv);
    } else {
      this.space.forEachLive(start, end, batch.readRevision(), (kv) => {
        victims.push(kv);
        return true;
      });
    }
    return this.deleteKeys(victims, request.prev_kv ?? false, batch);
  }

  /** Deletes live keys (also used by lease revocation). */
  deleteKeys(victims: readonly KeyRevision[], withPrevKvs: boolean, batch: WriteBatch): DeleteRangeResponse {
    const prevKvs: KeyValue[] = [];
    for (const kv of victims) {
      this.leases.detach(kv.lease, kv.key);
      batch.changes.push(this.space.delete(kv.key, batch.revision));
      if (withPrevKvs) prevKvs.push(keyValueOf(kv, false));
    }
    return { header: batch.header, deleted: victims.length, prev_kvs: prevKvs };
  }

  /** Runs a txn whose shape was checked (checkTxnShape), following the decisions of `planTxn`. */
  txn(request: TxnRequest, batch: WriteBatch, plan: boolean[]): TxnResponse {
    const succeeded = plan.shift();
    assert(succeeded !== undefined, "txn plan exhausted");
    const ops = (succeeded ? request.success : request.failure) ?? [];
    const responses: ResponseOp[] = [];
    for (const op of ops) responses.push(this.op(op, batch, plan));
    return { header: batch.header, succeeded, responses };
  }

  private op(op: RequestOp, batch: WriteBatch, plan: boolean[]): ResponseOp {
    if ("request_range" in op) {
      return { response_range: runRange(this.space, op.request_range, batch.readRevision(), batch.header) };
    }
    if ("request_put" in op) return { response_put: this.put(op.request_put, batch) };
    if ("request_delete_range" in op)
      return { response_delete_range: this.deleteRange(op.request_delete_range, batch) };
    return { response_txn: this.txn(op.request_txn, batch, plan) };
  }
}
