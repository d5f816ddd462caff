//! Forging a dump as someone who can write the file but does not know the
//! identity secret would: shared by the engine's and the binary's tests.

use std::path::Path;

/// Rewrites the dump at `file` as someone who can write it but does not
/// know the identity secret would: every `from` in a block's records
/// becomes `to` (of the same length, so the records still decode), and
/// each block's checksum and the footer are recomputed with unkeyed
/// BLAKE3 — which is all a dump's seal was before it was keyed.
pub(crate) fn forge(file: &Path, from: &[u8], to: &[u8]) {
    let bytes = std::fs::read(file).unwrap();
    let sum = |data: &[u8]| blake3::hash(data).as_bytes()[..16].to_vec();
    let header = &bytes[..35];
    let mut out = header.to_vec();
    let mut sealed = blake3::Hasher::new();
    sealed.update(header);
    let mut at = 35;
    loop {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 {
            out.extend_from_slice(&bytes[at..at + 12]);
            out.extend_from_slice(&sealed.finalize().as_bytes()[..16]);
            break;
        }
        let mut payload = bytes[at + 20..at + 20 + len].to_vec();
        for start in 0..payload.len().saturating_sub(from.len()) {
            if payload[start..].starts_with(from) {
                payload[start..start + to.len()].copy_from_slice(to);
            }
        }
        let count = &bytes[at + 20 + len..at + 24 + len];
        let block_sum = sum(&payload);
        out.extend_from_slice(&bytes[at..at + 4]);
        out.extend_from_slice(&block_sum);
        out.extend_from_slice(&payload);
        out.extend_from_slice(count);
        sealed.update(&block_sum);
        sealed.update(count);
        at += 24 + len;
    }
    std::fs::write(file, out).unwrap();
}
