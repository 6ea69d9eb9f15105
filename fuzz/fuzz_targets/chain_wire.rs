//! What a public-chain node decodes from a stranger: a link frame, a
//! signed transaction (the API and gossip), a block (gossip and sync).
#![no_main]

use libfuzzer_sys::fuzz_target;
use qcss_dpos::block::Block;
use qcss_dpos::codec;
use qcss_dpos::runner::Wire;
use qcss_dpos::tx::SignedTx;

fuzz_target!(|data: &[u8]| {
    let _ = codec::decode::<Wire>(data, 4 << 20);
    let _ = SignedTx::decode(data, 512 * 1024);
    if let Ok(b) = Block::decode(data, 2 << 20) {
        // What decodes re-encodes to the same bytes (the codec is canonical).
        assert_eq!(b.encode(), data, "block encoding is canonical");
    }
});
