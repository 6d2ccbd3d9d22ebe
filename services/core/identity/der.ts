/**
 * Minimal DER (ITU-T X.690) writer and reader for the fixed certificate,
 * CSR and CRL shapes that this module produces and parses. It handles
 * definite lengths and single-byte tags only, which is all that X.509
 * and PKCS#10 use.
 */

/** Universal and context-specific tag bytes used by X.509. */
export const Tag = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  utf8String: 0x0c,
  printableString: 0x13,
  ia5String: 0x16,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
} as const;

/** Returns the context-specific tag byte `[n]`, constructed or primitive. */
export function contextTag(n: number, constructed: boolean): number {
  return 0x80 | (constructed ? 0x20 : 0) | n;
}

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** Encodes one TLV element whose content is the concatenation of `parts`. */
export function tlv(tag: number, ...parts: Uint8Array[]): Buffer {
  let length = 0;
  for (const part of parts) length += part.length;
  return Buffer.concat([Buffer.from([tag]), encodeLength(length), ...parts]);
}

export function sequence(...parts: Uint8Array[]): Buffer {
  return tlv(Tag.sequence, ...parts);
}

/** Encodes a non-negative INTEGER from its unsigned big-endian magnitude. */
export function unsignedInteger(magnitude: Uint8Array): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.subarray(start);
  const needsPad = trimmed.length === 0 || (trimmed[0] & 0x80) !== 0;
  return tlv(Tag.integer, needsPad ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

export function smallInteger(value: number): Buffer {
  if (!Number.isSafeInteger(value) || value < 0) throw new TypeError(`DER integer must be a non-negative safe integer, got ${value}`);
  const bytes: number[] = [];
  for (let rest = value; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff);
  return unsignedInteger(Uint8Array.from(bytes.length === 0 ? [0] : bytes));
}

/** Encodes an OBJECT IDENTIFIER from dotted text such as "2.5.29.19". */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split(".").map(Number);
  if (arcs.length < 2 || arcs.some((arc) => !Number.isSafeInteger(arc) || arc < 0)) throw new TypeError(`invalid OID "${dotted}"`);
  const body: number[] = [];
  const values = [arcs[0] * 40 + arcs[1], ...arcs.slice(2)];
  for (const value of values) {
    const chunk: number[] = [value & 0x7f];
    for (let rest = Math.floor(value / 128); rest > 0; rest = Math.floor(rest / 128)) chunk.unshift((rest & 0x7f) | 0x80);
    body.push(...chunk);
  }
  return tlv(Tag.oid, Uint8Array.from(body));
}

/** Encodes a BIT STRING with no unused bits. */
export function bitString(content: Uint8Array): Buffer {
  return tlv(Tag.bitString, Buffer.from([0]), content);
}

export function octetString(content: Uint8Array): Buffer {
  return tlv(Tag.octetString, content);
}

export const derTrue = Buffer.from([Tag.boolean, 1, 0xff]);
export const derNull = Buffer.from([Tag.null, 0]);

function pad2(n: number): string {
  return n.toString().padStart(2, "0");
}

/**
 * Encodes a certificate or CRL time as RFC 5280 section 4.1.2.5 requires:
 * UTCTime through 2049, GeneralizedTime from 2050, in whole seconds UTC.
 */
export function x509Time(date: Date): Buffer {
  const year = date.getUTCFullYear();
  const rest =
    pad2(date.getUTCMonth() + 1) + pad2(date.getUTCDate()) + pad2(date.getUTCHours()) + pad2(date.getUTCMinutes()) + pad2(date.getUTCSeconds()) + "Z";
  if (year >= 1950 && year < 2050) return tlv(Tag.utcTime, Buffer.from(pad2(year % 100) + rest, "ascii"));
  if (year < 0 || year > 9999) throw new TypeError(`certificate time out of range: ${date.toISOString()}`);
  return tlv(Tag.generalizedTime, Buffer.from(year.toString().padStart(4, "0") + rest, "ascii"));
}

/** One parsed element: its tag, and where its header and content sit in the input. */
export interface DerElement {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset one past the last content byte. */
  end: number;
}

/** Thrown by the reader on malformed input; callers map it to their own domain error. */
export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DerError";
  }
}

/** Reads the element that starts at `offset`, bounded by `limit`. */
export function readElement(input: Uint8Array, offset: number, limit: number = input.length): DerElement {
  if (offset + 2 > limit) throw new DerError(`truncated element header at offset ${offset}`);
  const tag = input[offset];
  if ((tag & 0x1f) === 0x1f) throw new DerError(`multi-byte tag at offset ${offset} is not supported`);
  let cursor = offset + 1;
  const first = input[cursor++];
  let length: number;
  if (first < 0x80) {
    length = first;
  } else {
    const count = first & 0x7f;
    if (count === 0) throw new DerError(`indefinite length at offset ${offset} is not DER`);
    if (count > 4) throw new DerError(`length of ${count} bytes at offset ${offset} is too large`);
    if (cursor + count > limit) throw new DerError(`truncated length at offset ${offset}`);
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + input[cursor++];
    if (length < 0x80 || (count > 1 && input[cursor - count] === 0)) throw new DerError(`non-minimal length at offset ${offset}`);
  }
  const end = cursor + length;
  if (end > limit) throw new DerError(`element at offset ${offset} runs past its enclosing element`);
  return { tag, start: offset, contentStart: cursor, end };
}

/** Reads the element at `offset` and checks its tag. */
export function expectElement(input: Uint8Array, offset: number, tag: number, what: string, limit?: number): DerElement {
  const element = readElement(input, offset, limit);
  if (element.tag !== tag) {
    throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, found 0x${element.tag.toString(16)} at offset ${offset}`);
  }
  return element;
}

/** Lists the direct children of a constructed element. */
export function children(input: Uint8Array, parent: DerElement): DerElement[] {
  const result: DerElement[] = [];
  for (let offset = parent.contentStart; offset < parent.end; ) {
    const child = readElement(input, offset, parent.end);
    result.push(child);
    offset = child.end;
  }
  return result;
}

/** Returns a view of the whole encoding of `element`, header included. */
export function encodingOf(input: Uint8Array, element: DerElement): Uint8Array {
  return input.subarray(element.start, element.end);
}

/** Returns a view of the content bytes of `element`. */
export function contentOf(input: Uint8Array, element: DerElement): Uint8Array {
  return input.subarray(element.contentStart, element.end);
}
