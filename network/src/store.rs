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

/// Opens `config`'s store, turning a panic inside sled into an error.
///
/// sled 0.34 asserts rather than reports on some corrupted segment files
/// (issue 15: an orderer died with "index out of bounds" in `segment.rs`),
/// which left the operator with a backtrace and no file name. The error
/// names the store and says what to do.
pub fn open_store(config: &sled::Config, dir: &Path) -> Result<sled::Db, sled::Error> {
    let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open()));
    opened.unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("sled panicked");
        Err(sled::Error::Io(std::io::Error::other(format!(
            "the store in {} is corrupted (sled: {why}); move the directory aside \
             and restart to re-sync it from the other nodes",
            dir.display()
        ))))
    })
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

    #[test]
    fn a_store_sled_cannot_read_is_an_error_naming_it_not_a_panic() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("store");
        let db = sled_config(&dir).open().unwrap();
        for i in 0u32..2000 {
            db.insert(i.to_be_bytes(), vec![i as u8; 1000]).unwrap();
        }
        db.flush().unwrap();
        drop(db);
        // Overwrite the middle of the data file with garbage.
        let file = dir.join("db");
        let mut bytes = std::fs::read(&file).unwrap();
        let n = bytes.len();
        for b in &mut bytes[n / 4..n / 2] {
            *b = 0xA5;
        }
        std::fs::write(&file, bytes).unwrap();
        match open_store(&sled_config(&dir), &dir) {
            // sled may also recover by truncating at the damage; then the
            // store opens and what survived reads back.
            Ok(db) => {
                let _ = db.get(0u32.to_be_bytes());
            }
            Err(e) => {
                let e = e.to_string();
                assert!(
                    e.contains("corrupt") || e.contains("Corrupt"),
                    "the error says what is wrong: {e}"
                );
            }
        }
    }
}
