import { Role, SessionMessage } from "../../../gen/ewii/tunnel/v1/tunnel.js";
import type { SealedFrame } from "../../../gen/ewii/tunnel/v1/tunnel.js";
import { isEwiiError } from "../errors.js";
import { LogField } from "../log.js";
import type { Logger } from "../log.js";
import { AEAD_KEY_BYTES, AEAD_TAG_BYTES, nativeSuite } from "../crypto/index.js";
import type { CryptoSuite } from "../crypto/index.js";
import { SessionErrorCode, sessionError } from "./errors.js";
import { FrameLayout, MAX_KEY_EPOCH, MAX_SEQUENCE, SESSION_ID_BYTES } from "./frame-layout.js";
import { ratchetKey } from "./keys.js";
import type { Direction } from "./keys.js";
import { DEFAULT_REPLAY_WINDOW_SIZE, ReplayWindow } from "./replay-window.js";

/** Limits of one session; every field has a default in DEFAULT_SESSION_LIMITS. */
export interface SessionLimits {
  /** Largest plaintext of one frame, in bytes. */
  maxFrameBytes: number;
  /** Frames sealed under one key before the sender moves to the next epoch. */
  rekeyAfterFrames: number;
  /** Milliseconds under one key before the sender moves to the next epoch. */
  rekeyAfterMs: number;
  /** Milliseconds during which the receiver still opens frames of the previous epoch. */
  previousEpochGraceMs: number;
  /** Sequence numbers covered by each receive window below the highest seen. */
  replayWindowSize: number;
}

export const DEFAULT_SESSION_LIMITS: Readonly<SessionLimits> = {
  maxFrameBytes: 4 * 1024 * 1024,
  rekeyAfterFrames: 2 ** 20,
  rekeyAfterMs: 10 * 60 * 1000,
  previousEpochGraceMs: 30 * 1000,
  replayWindowSize: DEFAULT_REPLAY_WINDOW_SIZE,
};

export interface SessionOptions {
  /** Session id, 16 bytes. */
  id: Uint8Array;
  /** This side's role; frames it seals carry it as their direction. */
  role: Role.ROLE_HUB | Role.ROLE_CLIENT;
  /** Epoch-0 key of the frames this side seals, 32 bytes; the session owns and zeroes it. */
  sendKey: Uint8Array;
  /** Epoch-0 key of the frames this side opens, 32 bytes; the session owns and zeroes it. */
  receiveKey: Uint8Array;
  peerSpiffeId: string;
  /** Serial of the peer's leaf certificate, lowercase hexadecimal. */
  peerSerial: string;
  suite?: CryptoSuite;
  /** Clock in milliseconds since the Unix epoch. */
  now?: () => number;
  limits?: Partial<SessionLimits>;
  logger?: Logger;
}

export interface SessionStats {
  framesSealed: number;
  framesOpened: number;
  sendEpoch: number;
  receiveEpoch: number;
  rekeys: number;
  rejected: {
    replayed: number;
    tooOld: number;
    authFailed: number;
    wrongSession: number;
    wrongDirection: number;
    wrongEpoch: number;
    tooLarge: number;
    malformed: number;
  };
}

interface ReceiveEpoch {
  epoch: number;
  key: Uint8Array;
  window: ReplayWindow;
  /** Time after which this epoch is no longer opened; Infinity while it is the current one. */
  expiresAtMs: number;
}

/**
 * One end of an established hub-client session. It seals and opens
 * ChaCha20-Poly1305 frames with one key per direction, rejects replayed,
 * too old, altered and misdirected frames and counts each rejection, and
 * rekeys by a one-way ratchet after a frame count or an age. Sessions are
 * built by HubHandshake.finish and ClientHandshake.respond.
 *
 * Frame checks happen in this order: session id, direction, size, key epoch,
 * replay window, then authentication. Only an authenticated frame moves the
 * replay window or the receive epoch, so a forged frame changes nothing but
 * the rejection counters.
 */
export class Session {
  readonly id: Uint8Array;
  readonly role: Role.ROLE_HUB | Role.ROLE_CLIENT;
  readonly peerSpiffeId: string;
  readonly peerSerial: string;
  readonly limits: Readonly<SessionLimits>;

  private readonly idBuffer: Buffer;
  private readonly suite: CryptoSuite;
  private readonly now: () => number;
  private readonly logger: Logger | undefined;
  private readonly peerRole: Role;
  private readonly sendDirection: Direction;
  private readonly receiveDirection: Direction;
  private readonly sendLayout: FrameLayout;
  private readonly receiveLayout: FrameLayout;

  private sendKey: Uint8Array;
  private sendEpoch = 0;
  private sendSequence = 0n;
  private sendFramesInEpoch = 0;
  private sendEpochStartedMs: number;
  private current: ReceiveEpoch;
  private previous: ReceiveEpoch | undefined;
  private closed = false;
  private readonly counters: SessionStats;

  constructor(options: SessionOptions) {
    if (options.id.length !== SESSION_ID_BYTES) throw new TypeError(`session id must be ${SESSION_ID_BYTES} bytes, got ${options.id.length}`);
    if (options.sendKey.length !== AEAD_KEY_BYTES || options.receiveKey.length !== AEAD_KEY_BYTES) {
      throw new TypeError(`session keys must be ${AEAD_KEY_BYTES} bytes each`);
    }
    this.limits = validateLimits({ ...DEFAULT_SESSION_LIMITS, ...options.limits });
    this.id = Uint8Array.from(options.id);
    this.idBuffer = Buffer.from(this.id);
    this.role = options.role;
    this.peerRole = options.role === Role.ROLE_HUB ? Role.ROLE_CLIENT : Role.ROLE_HUB;
    this.sendDirection = options.role === Role.ROLE_HUB ? "hub->client" : "client->hub";
    this.receiveDirection = options.role === Role.ROLE_HUB ? "client->hub" : "hub->client";
    this.peerSpiffeId = options.peerSpiffeId;
    this.peerSerial = options.peerSerial;
    this.suite = options.suite ?? nativeSuite;
    this.now = options.now ?? Date.now;
    this.logger = options.logger;
    this.sendLayout = new FrameLayout(this.id, this.role);
    this.receiveLayout = new FrameLayout(this.id, this.peerRole);
    this.sendKey = options.sendKey;
    this.sendEpochStartedMs = this.now();
    this.current = { epoch: 0, key: options.receiveKey, window: new ReplayWindow(this.limits.replayWindowSize), expiresAtMs: Infinity };
    this.counters = {
      framesSealed: 0,
      framesOpened: 0,
      sendEpoch: 0,
      receiveEpoch: 0,
      rekeys: 0,
      rejected: { replayed: 0, tooOld: 0, authFailed: 0, wrongSession: 0, wrongDirection: 0, wrongEpoch: 0, tooLarge: 0, malformed: 0 },
    };
  }

  /** Encodes a SessionMessage and seals it into the next frame. */
  seal(message: SessionMessage): SealedFrame {
    return this.sealBytes(SessionMessage.encode(message).finish());
  }

  /** Opens a frame and decodes its SessionMessage. */
  open(frame: SealedFrame): SessionMessage {
    return this.openWithPlaintext(frame).message;
  }

  /** Opens a frame and returns its decoded SessionMessage together with the plaintext it was decoded from. */
  openWithPlaintext(frame: SealedFrame): { message: SessionMessage; plaintext: Uint8Array } {
    const plaintext = this.openBytes(frame);
    try {
      return { message: SessionMessage.decode(plaintext), plaintext };
    } catch (err) {
      this.counters.rejected.malformed++;
      throw sessionError(SessionErrorCode.frameMalformed, `frame ${frame.sequence} authenticated but its plaintext is not a valid SessionMessage; the peer runs an incompatible version`, err);
    }
  }

  /** Seals an already-encoded payload; the bytes are not copied before encryption. */
  sealBytes(plaintext: Uint8Array): SealedFrame {
    this.assertOpen();
    if (plaintext.length > this.limits.maxFrameBytes) {
      throw sessionError(SessionErrorCode.frameTooLarge, `frame payload of ${plaintext.length} bytes exceeds the session maximum of ${this.limits.maxFrameBytes} bytes; split it into smaller messages`);
    }
    this.rekeySendIfDue();
    if (this.sendSequence > MAX_SEQUENCE) {
      throw sessionError(SessionErrorCode.sequenceExhausted, "session sequence numbers are exhausted; open a new session");
    }
    const sequence = this.sendSequence++;
    this.sendFramesInEpoch++;
    this.sendLayout.prepare(this.sendEpoch, sequence);
    const sealed = this.suite.aeadSealDetached(this.sendKey, this.sendLayout.nonce, plaintext, this.sendLayout.aad);
    this.counters.framesSealed++;
    return {
      sessionId: this.idBuffer,
      direction: this.role,
      sequence,
      keyEpoch: this.sendEpoch,
      ciphertext: asBuffer(sealed.ciphertext),
      tag: asBuffer(sealed.tag),
    };
  }

  /** Checks and opens a frame and returns its plaintext bytes. */
  openBytes(frame: SealedFrame): Uint8Array {
    this.assertOpen();
    this.checkFrameHeader(frame);
    const target = this.receiveEpochFor(frame.keyEpoch);

    const verdict = target.window.check(frame.sequence);
    if (verdict === "duplicate") {
      this.counters.rejected.replayed++;
      throw sessionError(SessionErrorCode.frameReplayed, `frame ${frame.sequence} of key epoch ${frame.keyEpoch} was already received; the frame is dropped`);
    }
    if (verdict === "too_old") {
      this.counters.rejected.tooOld++;
      throw sessionError(
        SessionErrorCode.frameTooOld,
        `frame ${frame.sequence} is older than the replay window (${this.limits.replayWindowSize} frames below ${target.window.highestAccepted}); the frame is dropped`,
      );
    }

    this.receiveLayout.prepare(frame.keyEpoch, frame.sequence);
    let plaintext: Uint8Array;
    try {
      plaintext = this.suite.aeadOpenDetached(target.key, this.receiveLayout.nonce, frame.ciphertext, frame.tag, this.receiveLayout.aad);
    } catch (err) {
      if (target !== this.current && target !== this.previous) target.key.fill(0);
      if (!isEwiiError(err) || err.code !== "ERR_CRYPTO_AUTH_FAILED") throw err;
      this.counters.rejected.authFailed++;
      throw sessionError(SessionErrorCode.frameAuthFailed, `frame ${frame.sequence} failed authentication: it was altered or sealed with another key; the frame is dropped`, err);
    }

    if (target !== this.current && target !== this.previous) this.advanceReceiveEpoch(target);
    target.window.accept(frame.sequence);
    this.counters.framesOpened++;
    return plaintext;
  }

  get stats(): SessionStats {
    return {
      ...this.counters,
      sendEpoch: this.sendEpoch,
      receiveEpoch: this.current.epoch,
      rejected: { ...this.counters.rejected },
    };
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Zeroes every key; later seal and open calls fail with ERR_SESSION_CLOSED. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sendKey.fill(0);
    this.current.key.fill(0);
    this.previous?.key.fill(0);
    this.previous = undefined;
  }

  private assertOpen(): void {
    if (this.closed) throw sessionError(SessionErrorCode.closed, "session is closed; run a new handshake");
  }

  private checkFrameHeader(frame: SealedFrame): void {
    if (!this.idBuffer.equals(frame.sessionId)) {
      this.counters.rejected.wrongSession++;
      throw sessionError(SessionErrorCode.frameWrongSession, "frame carries another session id; the relay routed it to the wrong session");
    }
    if (frame.direction !== this.peerRole) {
      this.counters.rejected.wrongDirection++;
      throw sessionError(SessionErrorCode.frameWrongDirection, `frame direction is ${Role[frame.direction] ?? frame.direction} but this side only opens frames from ${Role[this.peerRole]}`);
    }
    if (frame.ciphertext.length > this.limits.maxFrameBytes) {
      this.counters.rejected.tooLarge++;
      throw sessionError(SessionErrorCode.frameTooLarge, `frame ciphertext of ${frame.ciphertext.length} bytes exceeds the session maximum of ${this.limits.maxFrameBytes} bytes`);
    }
    if (frame.tag.length !== AEAD_TAG_BYTES || frame.sequence < 0n || frame.sequence > MAX_SEQUENCE) {
      this.counters.rejected.malformed++;
      throw sessionError(SessionErrorCode.frameMalformed, `frame ${frame.sequence} is malformed: its tag is ${frame.tag.length} bytes instead of ${AEAD_TAG_BYTES}, or the sequence is out of range`);
    }
  }

  /**
   * Returns the receive state for a key epoch: the current one, the previous
   * one inside its grace time, or a candidate for the next epoch whose key is
   * derived now and kept only if the frame authenticates.
   */
  private receiveEpochFor(epoch: number): ReceiveEpoch {
    if (epoch === this.current.epoch) return this.current;
    const nowMs = this.now();
    if (this.previous !== undefined && nowMs > this.previous.expiresAtMs) {
      this.previous.key.fill(0);
      this.previous = undefined;
    }
    if (this.previous !== undefined && epoch === this.previous.epoch) return this.previous;
    if (epoch === this.current.epoch + 1 && epoch <= MAX_KEY_EPOCH) {
      return {
        epoch,
        key: ratchetKey(this.suite, this.current.key, this.id, this.receiveDirection, epoch),
        window: new ReplayWindow(this.limits.replayWindowSize),
        expiresAtMs: Infinity,
      };
    }
    this.counters.rejected.wrongEpoch++;
    const reason = epoch < this.current.epoch ? "has expired" : "is ahead of the next expected epoch";
    throw sessionError(SessionErrorCode.frameWrongEpoch, `frame key epoch ${epoch} ${reason} (current receive epoch ${this.current.epoch}); the frame is dropped`);
  }

  private advanceReceiveEpoch(next: ReceiveEpoch): void {
    this.previous?.key.fill(0);
    this.previous = { ...this.current, expiresAtMs: this.now() + this.limits.previousEpochGraceMs };
    this.current = next;
    this.logger?.info("session receive key advanced", { [LogField.sessionId]: this.idBuffer.toString("hex"), key_epoch: next.epoch, [LogField.spiffeId]: this.peerSpiffeId });
  }

  private rekeySendIfDue(): void {
    const due = this.sendFramesInEpoch >= this.limits.rekeyAfterFrames || this.now() - this.sendEpochStartedMs >= this.limits.rekeyAfterMs;
    if (!due) return;
    if (this.sendEpoch >= MAX_KEY_EPOCH) {
      throw sessionError(SessionErrorCode.sequenceExhausted, "session key epochs are exhausted; open a new session");
    }
    const nextEpoch = this.sendEpoch + 1;
    const nextKey = ratchetKey(this.suite, this.sendKey, this.id, this.sendDirection, nextEpoch);
    this.sendKey.fill(0);
    this.sendKey = nextKey;
    this.sendEpoch = nextEpoch;
    this.sendFramesInEpoch = 0;
    this.sendEpochStartedMs = this.now();
    this.counters.rekeys++;
    this.logger?.info("session send key advanced", { [LogField.sessionId]: this.idBuffer.toString("hex"), key_epoch: nextEpoch, [LogField.spiffeId]: this.peerSpiffeId });
  }
}

function validateLimits(limits: SessionLimits): SessionLimits {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value < 1) throw new TypeError(`session limit ${name} must be a positive integer, got ${value}`);
  }
  return limits;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
