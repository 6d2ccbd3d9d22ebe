// Public API of the identity module: SPIFFE IDs, trust bundles, X509-SVID
// validation and issuance, CSRs, CRLs and PEM helpers.
export { SpiffeId, validateTrustDomain, MAX_SPIFFE_ID_BYTES, MAX_TRUST_DOMAIN_BYTES } from "./spiffe-id.js";
export { TrustBundle, BundleSet, MAX_BUNDLE_JSON_BYTES } from "./bundle.js";
export { verifyX509Svid, MAX_CHAIN_CERTS } from "./x509-svid.js";
export type { VerifiedSvid, BundleSource, VerifyX509SvidOptions } from "./x509-svid.js";
export { generateKeyPair, createRootCa, issueX509Svid, SERIAL_BYTES } from "./issuer.js";
export type { KeyPair, SigningCa, RootCaOptions, IssueX509SvidOptions, IssuedSvid } from "./issuer.js";
export { createCsr, parseCsr, MAX_CSR_BYTES } from "./csr.js";
export type { ParsedCsr } from "./csr.js";
export { createCrl } from "./crl.js";
export type { CreateCrlOptions, RevokedSerial } from "./crl.js";
export { derToPem, pemToDerList, privateKeyToPem } from "./pem.js";
export { serialHex, serialHexFromBytes } from "./serial.js";
export { IdentityErrorCode } from "./errors.js";
export { NOT_BEFORE_BACKDATE_MS } from "./validity.js";
