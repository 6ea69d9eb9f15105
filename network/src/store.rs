//! sled settings shared by the peer's ledger and the orderer's store.

use std::path::Path;

/// sled's segment size for a new store: 2 MiB instead of sled's 512 KiB.
///
/// sled writes any page larger than a quarter of a segment to a file of its
/// own (a "blob": created, written, synced, later unlinked). With 512 KiB
/// segments that threshold is 128 KiB, below two blocks of a busy channel,
/// so a page of the block tree went to a new blob file on every rewrite.
/// At 2 MiB the threshold is 512 KiB. Not larger: sled's write buffers are
/// segment-sized, and 8 MiB ones cost page faults (transparent huge pages
/// zeroed on first touch) that outweighed the blobs.
pub const SEGMENT_SIZE: usize = 2 << 20;

/// A sled configuration for the store in `dir`. A store keeps the segment
/// size it was created with (sled refuses to open it with another), so an
/// existing store is opened with the size its `conf` file records.
pub fn sled_config(dir: &Path) -> sled::Config {
    let existing = std::fs::read(dir.join("conf")).ok().and_then(|conf| {
        String::from_utf8_lossy(&conf)
            .lines()
            .find_map(|l| l.strip_prefix("segment_size: ")?.trim().parse().ok())
    });
    sled::Config::new()
        .path(dir)
        .segment_size(existing.unwrap_or(SEGMENT_SIZE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_stores_get_large_segments_and_old_ones_keep_theirs() {
        let d = tempfile::tempdir().unwrap();
        let fresh = d.path().join("fresh");
        let db = sled_config(&fresh).open().unwrap();
        db.insert(b"k", vec![7u8; 300 * 1024]).unwrap();
        db.flush().unwrap();
        drop(db);
        // The value is above 128 KiB but below 512 KiB: no blob file.
        let blobs = std::fs::read_dir(fresh.join("blobs")).unwrap().count();
        assert_eq!(blobs, 0);
        assert_eq!(
            sled_config(&fresh)
                .open()
                .unwrap()
                .get(b"k")
                .unwrap()
                .unwrap()
                .len(),
            300 * 1024
        );

        // A store created with sled's default still opens.
        let old = d.path().join("old");
        sled::Config::new()
            .path(&old)
            .open()
            .unwrap()
            .insert(b"a", b"b")
            .unwrap();
        let db = sled_config(&old)
            .open()
            .expect("an old store opens with its own segment size");
        assert_eq!(db.get(b"a").unwrap().unwrap(), b"b");
    }
}
