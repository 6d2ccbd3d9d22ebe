import { status } from "@grpc/grpc-js";
import { EwiiError } from "../errors.js";
import { IdentityErrorCode, quote } from "./errors.js";

/**
 * SPIFFE IDs as defined by the SPIFFE-ID specification (spiffe/spiffe,
 * standards/SPIFFE-ID.md): `spiffe://<trust domain><path>`, with the
 * scheme in lowercase, a trust domain of [a-z0-9.-_], and a path of
 * `/`-separated segments of [A-Za-z0-9.-_] with no empty, "." or ".."
 * segment and no trailing slash. No port, userinfo, query or fragment is
 * allowed, and nothing is percent-decoded.
 */

const SCHEME_PREFIX = "spiffe://";

/** Maximum length of a whole SPIFFE ID in bytes; the IDs are ASCII, so also in characters. */
export const MAX_SPIFFE_ID_BYTES = 2048;

/** Maximum length of a trust domain name in bytes, from the same specification. */
export const MAX_TRUST_DOMAIN_BYTES = 255;

const TRUST_DOMAIN_CHARS = /^[a-z0-9._-]+$/;
const PATH_SEGMENT_CHARS = /^[A-Za-z0-9._-]+$/;

function invalid(rule: string, value: string): EwiiError {
  return new EwiiError(IdentityErrorCode.spiffeIdInvalid, `invalid SPIFFE ID ${quote(value)}: ${rule}`, {
    status: status.INVALID_ARGUMENT,
  });
}

function checkTrustDomain(trustDomain: string, whole: string): void {
  if (trustDomain.length === 0) throw invalid("trust domain is missing", whole);
  if (trustDomain.length > MAX_TRUST_DOMAIN_BYTES) {
    throw invalid(`trust domain is longer than ${MAX_TRUST_DOMAIN_BYTES} bytes`, whole);
  }
  if (!TRUST_DOMAIN_CHARS.test(trustDomain)) {
    throw invalid(
      "trust domain characters are limited to lowercase letters, digits, dots, dashes and underscores (no port, userinfo or uppercase)",
      whole,
    );
  }
}

function checkPath(path: string, whole: string): void {
  if (path === "") return;
  if (!path.startsWith("/")) throw invalid('path must start with "/"', whole);
  const segments = path.slice(1).split("/");
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i];
    if (segment === "") {
      throw invalid(i === segments.length - 1 ? "path cannot have a trailing slash" : "path cannot contain empty segments", whole);
    }
    if (segment === "." || segment === "..") throw invalid('path cannot contain "." or ".." segments', whole);
    if (!PATH_SEGMENT_CHARS.test(segment)) {
      throw invalid("path segment characters are limited to letters, digits, dots, dashes and underscores (no query or fragment)", whole);
    }
  }
}

/**
 * Validates a trust domain name and returns it. Accepts the bare name
 * ("example.org") or the trust domain's own SPIFFE ID ("spiffe://example.org").
 * Throws ERR_SPIFFE_ID_INVALID.
 */
export function validateTrustDomain(name: string): string {
  if (name.includes(":/")) {
    const id = SpiffeId.parse(name);
    if (id.path !== "") throw invalid("a trust domain cannot have a path", name);
    return id.trustDomain;
  }
  checkTrustDomain(name, name);
  return name;
}

export class SpiffeId {
  /** Trust domain name, without scheme, e.g. "acme.tenants.operator.example". */
  readonly trustDomain: string;
  /** Path, empty or starting with "/", e.g. "/client/site-1". */
  readonly path: string;

  private constructor(trustDomain: string, path: string) {
    this.trustDomain = trustDomain;
    this.path = path;
  }

  /** Parses `spiffe://<trust domain><path>`. Throws ERR_SPIFFE_ID_INVALID naming the rule that failed. */
  static parse(text: string): SpiffeId {
    if (typeof text !== "string") throw new TypeError(`SpiffeId.parse expects a string, got ${typeof text}`);
    if (text === "") throw invalid("cannot be empty", text);
    if (text.length > MAX_SPIFFE_ID_BYTES) throw invalid(`longer than ${MAX_SPIFFE_ID_BYTES} bytes`, text);
    if (!text.startsWith(SCHEME_PREFIX)) throw invalid('scheme must be "spiffe://" in lowercase', text);
    const rest = text.slice(SCHEME_PREFIX.length);
    const slash = rest.indexOf("/");
    const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
    const path = slash === -1 ? "" : rest.slice(slash);
    checkTrustDomain(trustDomain, text);
    checkPath(path, text);
    return new SpiffeId(trustDomain, path);
  }

  /** Builds an ID from a trust domain and a path ("" or starting with "/"). Throws ERR_SPIFFE_ID_INVALID. */
  static fromParts(trustDomain: string, path: string): SpiffeId {
    const whole = `${SCHEME_PREFIX}${trustDomain}${path}`;
    if (whole.length > MAX_SPIFFE_ID_BYTES) throw invalid(`longer than ${MAX_SPIFFE_ID_BYTES} bytes`, whole);
    checkTrustDomain(trustDomain, whole);
    checkPath(path, whole);
    return new SpiffeId(trustDomain, path);
  }

  toString(): string {
    return `${SCHEME_PREFIX}${this.trustDomain}${this.path}`;
  }

  toJSON(): string {
    return this.toString();
  }

  equals(other: SpiffeId): boolean {
    return this.trustDomain === other.trustDomain && this.path === other.path;
  }

  isMemberOf(trustDomain: string): boolean {
    return this.trustDomain === trustDomain;
  }

  /**
   * Tests whether the path starts with `prefix` on a segment boundary:
   * "/client/site-1" matches "/client/site-1" and "/client/site-1/x" but
   * not "/client/site-10". A prefix of "" or "/" matches every path, and
   * one trailing slash on the prefix is ignored.
   */
  hasPathPrefix(prefix: string): boolean {
    const trimmed = prefix.endsWith("/") ? prefix.slice(0, -1) : prefix;
    if (trimmed === "") return true;
    if (!trimmed.startsWith("/")) throw new TypeError(`path prefix must start with "/", got ${quote(prefix)}`);
    return this.path === trimmed || this.path.startsWith(`${trimmed}/`);
  }
}
