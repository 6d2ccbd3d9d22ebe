import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

/** Field numbers of ewii.tunnel.v1.SessionMessage.rows and of RowChunk.rows (tunnel.proto). */
const SESSION_MESSAGE_ROWS_FIELD = 3;
const ROW_CHUNK_ROWS_FIELD = 2;

/**
 * Calls `onRow` with the protobuf encoding of each Row in a SessionMessage
 * plaintext that carries a RowChunk, in order, without decoding the rows.
 * The slices share memory with `plaintext`. Plaintexts of other message
 * kinds yield nothing. The caller has already decoded the same plaintext
 * with SessionMessage.decode, so malformed input has been rejected there.
 */
export function forEachEncodedRow(plaintext: Uint8Array, onRow: (encoded: Uint8Array) => void): void {
  const message = new BinaryReader(plaintext);
  while (message.pos < message.len) {
    const [field, wireType] = message.tag();
    if (field !== SESSION_MESSAGE_ROWS_FIELD || wireType !== WireType.LengthDelimited) {
      message.skip(wireType, field);
      continue;
    }
    const chunk = new BinaryReader(message.bytes());
    while (chunk.pos < chunk.len) {
      const [chunkField, chunkWireType] = chunk.tag();
      if (chunkField === ROW_CHUNK_ROWS_FIELD && chunkWireType === WireType.LengthDelimited) onRow(chunk.bytes());
      else chunk.skip(chunkWireType, chunkField);
    }
  }
}
