//! `supervise/tail`: the recent output of a service, kept by runsv whatever the
//! output's destination, for `sv log` and for the last line `sv status` shows.
//!
//! It is a ring buffer in a file, so it outlives restarts of the service and of runsv,
//! costs no memory in runsv, and never grows:
//!
//! ```text
//! 0..16   "runtree tail 1\n\0"
//! 16..24  begin: the oldest byte still held, as an offset in the whole output (u64 LE)
//! 24..32  end: the offset just past the newest byte (u64 LE)
//! 32..    the ring: output byte at offset `o` is at 32 + o % capacity
//! ```
//!
//! Offsets count every byte the service ever wrote through runsv, so a reader that
//! follows the output knows exactly what it missed. There is one writer (runsv; a
//! second one is excluded by `supervise/lock`) and any number of readers, who take no
//! lock: the writer advances `begin` before it overwrites old bytes and `end` after it
//! wrote new ones, so a reader that reads `end`, then the bytes, then `begin` again
//! knows which of the bytes it read are whole (see [`Snapshot`]).
//!
//! The file is created at the first byte of output: a service that writes nothing
//! costs nothing.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 16] = b"runtree tail 1\n\0";
const HEADER: u64 = 32;

/// The size of the ring unless the definition says otherwise.
pub const DEFAULT_CAPACITY: u64 = 64 * 1024;
/// The largest ring a reader accepts (the definition's `log_tail` allows no more): a
/// file that claims more, such as a huge sparse one, is not a tail, so no reader ever
/// allocates what a file's size says.
pub const MAX_CAPACITY: u64 = 64 * 1024 * 1024;

/// runsv's side: appends output.
pub struct TailWriter {
    path: PathBuf,
    capacity: u64,
    file: Option<File>,
    begin: u64,
    end: u64,
    /// A failure was reported and nothing has succeeded since.
    warned: bool,
}

impl TailWriter {
    /// The writer for `path` with a ring of `capacity` bytes; 0 keeps nothing.
    pub fn new(path: PathBuf, capacity: u64) -> TailWriter {
        TailWriter {
            path,
            capacity,
            file: None,
            begin: 0,
            end: 0,
            warned: false,
        }
    }

    /// Adds `bytes` to the tail. Errors are for the caller to report once; the output
    /// itself never waits on the tail.
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.capacity == 0 || bytes.is_empty() {
            return Ok(());
        }
        if self.file.is_none() {
            self.open()?;
        }
        let result = self.write(bytes);
        if result.is_err() {
            // Reopen next time: the file may have been removed or replaced.
            self.file = None;
        }
        result
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let capacity = self.capacity;
        let new_end = self.end + bytes.len() as u64;
        let new_begin = self.begin.max(new_end.saturating_sub(capacity));
        // Only the last `capacity` bytes of a large write can be kept.
        let skip = bytes.len().saturating_sub(capacity as usize);
        let kept = &bytes[skip..];
        let first = self.end + skip as u64;
        if new_begin != self.begin {
            // Readers learn that old bytes go before the bytes are overwritten.
            file.write_all_at(&new_begin.to_le_bytes(), 16)?;
            self.begin = new_begin;
        }
        let position = first % capacity;
        let room = (capacity - position) as usize;
        let (head, wrapped) = kept.split_at(kept.len().min(room));
        file.write_all_at(head, HEADER + position)?;
        if !wrapped.is_empty() {
            file.write_all_at(wrapped, HEADER)?;
        }
        file.write_all_at(&new_end.to_le_bytes(), 24)?;
        self.end = new_end;
        Ok(())
    }

    /// Opens the tail a previous runsv left (continuing its offsets) or makes a new one.
    /// A file of another size or format is replaced, keeping what it held that fits.
    fn open(&mut self) -> io::Result<()> {
        let size = HEADER + self.capacity;
        // Only a regular file is opened: whatever else is there is replaced below.
        let regular = crate::reader::kind_at(None, &self.path, crate::reader::Links::Refuse)
            .is_ok_and(|kind| kind == Some(crate::reader::Kind::Regular));
        let existing = regular.then(|| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(
                    nix::libc::O_NOFOLLOW
                        | nix::libc::O_CLOEXEC
                        | nix::libc::O_NONBLOCK
                        | nix::libc::O_NOCTTY,
                )
                .open(&self.path)
        });
        if let Some(Ok(file)) = existing {
            if let Ok(Some(snapshot)) = Snapshot::read(&file) {
                if file.metadata()?.len() == size {
                    self.begin = snapshot.begin;
                    self.end = snapshot.end;
                    self.file = Some(file);
                    return Ok(());
                }
                return self.create(size, snapshot.end, &snapshot.bytes);
            }
        }
        self.create(size, 0, &[])
    }

    /// A new tail file, put in place atomically, holding `bytes` that ended at `end`.
    fn create(&mut self, size: u64, end: u64, bytes: &[u8]) -> io::Result<()> {
        let mut temporary = self.path.as_os_str().to_owned();
        temporary.push(".new");
        let temporary = PathBuf::from(temporary);
        let _ = std::fs::remove_file(&temporary);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_CLOEXEC)
            .open(&temporary)?;
        file.set_len(size)?;
        let mut header = [0u8; HEADER as usize];
        header[..16].copy_from_slice(MAGIC);
        header[16..24].copy_from_slice(&end.to_le_bytes());
        header[24..32].copy_from_slice(&end.to_le_bytes());
        file.write_all_at(&header, 0)?;
        (self.begin, self.end) = (end, end);
        self.file = Some(file);
        if !bytes.is_empty() {
            let keep = &bytes[bytes.len().saturating_sub(self.capacity as usize)..];
            self.begin = end - keep.len() as u64;
            self.end = self.begin;
            if let Some(file) = &self.file {
                file.write_all_at(&self.begin.to_le_bytes(), 16)?;
                file.write_all_at(&self.begin.to_le_bytes(), 24)?;
            }
            self.write(keep)?;
        }
        std::fs::rename(&temporary, &self.path)
    }

    /// A warning for the first of a run of failed appends (the output itself still
    /// reaches its destination), so a full disk is said once, not at every line.
    pub fn report(&mut self, result: io::Result<()>) -> Option<String> {
        match result {
            Ok(()) => {
                self.warned = false;
                None
            }
            Err(_) if self.warned => None,
            Err(e) => {
                self.warned = true;
                Some(format!("supervise/tail: {e}"))
            }
        }
    }
}

/// What a reader got: the whole bytes from `begin` to `end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub begin: u64,
    pub end: u64,
    pub bytes: Vec<u8>,
}

impl Snapshot {
    /// Reads the bytes of `file` from offset `from` (or the oldest it holds) to its
    /// end. None when the file is not a tail.
    pub fn read_from(file: &File, from: u64) -> io::Result<Option<Snapshot>> {
        let mut header = [0u8; HEADER as usize];
        if read_exact_at(file, &mut header, 0)? < header.len() || &header[..16] != MAGIC {
            return Ok(None);
        }
        let size = file.metadata()?.len();
        let capacity = size.saturating_sub(HEADER);
        let (begin, mut end) = (field(&header, 16), field(&header, 24));
        if capacity == 0 || capacity > MAX_CAPACITY || end.saturating_sub(begin) > capacity {
            return Ok(None);
        }
        // In the middle of a write larger than the ring, `begin` has moved past the old
        // `end`: nothing is whole yet.
        end = end.max(begin);
        let start = from.clamp(begin, end);
        let mut bytes = vec![0u8; (end - start) as usize];
        let position = start % capacity;
        let room = (capacity - position) as usize;
        let split = bytes.len().min(room);
        let (head, wrapped) = bytes.split_at_mut(split);
        read_exact_at(file, head, HEADER + position)?;
        if !wrapped.is_empty() {
            read_exact_at(file, wrapped, HEADER)?;
        }
        // Bytes the writer began to overwrite while they were read are not whole:
        // `begin` says which (it moves before they are overwritten).
        let mut again = [0u8; 8];
        read_exact_at(file, &mut again, 16)?;
        let begin_after = u64::from_le_bytes(again);
        let valid_from = start.max(begin_after).min(end);
        bytes.drain(..(valid_from - start) as usize);
        Ok(Some(Snapshot {
            begin: valid_from,
            end,
            bytes,
        }))
    }

    /// Everything `file` holds.
    pub fn read(file: &File) -> io::Result<Option<Snapshot>> {
        Snapshot::read_from(file, 0)
    }

    /// At most the last `bytes` bytes `file` holds.
    pub fn read_last(file: &File, bytes: u64) -> io::Result<Option<Snapshot>> {
        let mut end = [0u8; 8];
        if read_exact_at(file, &mut end, 24)? < end.len() {
            return Ok(None);
        }
        Snapshot::read_from(file, u64::from_le_bytes(end).saturating_sub(bytes))
    }

    /// The last line (without its newline), or the unterminated end if it has one.
    /// None when there is no output at all.
    pub fn last_line(&self) -> Option<&[u8]> {
        let text = self.bytes.strip_suffix(b"\n").unwrap_or(&self.bytes);
        let start = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let line = &text[start..];
        (!self.bytes.is_empty()).then_some(line)
    }
}

/// Opens a tail for reading, or None when there is none (no output yet). Anything but
/// a regular file there is an error naming what it is.
pub fn open(path: &Path) -> io::Result<Option<File>> {
    match crate::reader::open_regular(path, crate::reader::Links::Refuse) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.is_missing() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// [`open`], relative to a directory held open.
pub fn open_at(base: crate::reader::Base, path: &Path) -> io::Result<Option<File>> {
    match crate::reader::open_regular_at(base, path, crate::reader::Links::Refuse) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.is_missing() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn field(header: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&header[at..at + 8]);
    u64::from_le_bytes(bytes)
}

/// Reads until `buffer` is full or the file ends; how much was read.
fn read_exact_at(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buffer.len() {
        match file.read_at(&mut buffer[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(path: &Path) -> Snapshot {
        let file = open(path).unwrap().unwrap();
        Snapshot::read(&file).unwrap().unwrap()
    }

    /// A temp dir and the path of a tail in it.
    fn scratch() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tail");
        (dir, path)
    }

    /// Asserts that the tail at `path` holds `bytes`, the output from `begin` to `end`.
    fn assert_holds(path: &Path, begin: u64, end: u64, bytes: &[u8]) {
        let snapshot = read_all(path);
        assert_eq!((snapshot.begin, snapshot.end), (begin, end));
        assert_eq!(snapshot.bytes, bytes);
    }

    /// Asserts that a writer replaces what is at `path`, which is no tail.
    fn assert_replaced(path: &Path) {
        TailWriter::new(path.to_path_buf(), 8).append(b"x").unwrap();
        assert_eq!(read_all(path).bytes, b"x");
    }

    #[test]
    fn nothing_written_makes_no_file() {
        let (_dir, path) = scratch();
        let mut writer = TailWriter::new(path.clone(), 16);
        writer.append(b"").unwrap();
        assert!(open(&path).unwrap().is_none());
    }

    #[test]
    fn keeps_the_last_capacity_bytes_with_their_offsets() {
        let (_dir, path) = scratch();
        let mut writer = TailWriter::new(path.clone(), 10);
        writer.append(b"one\n").unwrap();
        assert_eq!(read_all(&path).bytes, b"one\n");
        writer.append(b"two\nthree\n").unwrap();
        let snapshot = read_all(&path);
        assert_eq!((snapshot.begin, snapshot.end), (4, 14));
        assert_eq!(snapshot.bytes, b"two\nthree\n");
        // Larger than the ring: only its end is kept, the offsets count it all.
        writer.append(b"0123456789abcdef").unwrap();
        assert_holds(&path, 20, 30, b"6789abcdef");
    }

    #[test]
    fn wraps_around_byte_for_byte() {
        let (_dir, path) = scratch();
        let mut writer = TailWriter::new(path.clone(), 7);
        let mut all = Vec::new();
        for i in 0..50u8 {
            let piece: Vec<u8> = (0..(i % 5 + 1)).map(|k| b'a' + (i + k) % 26).collect();
            writer.append(&piece).unwrap();
            all.extend_from_slice(&piece);
            let snapshot = read_all(&path);
            assert_eq!(snapshot.end, all.len() as u64);
            assert_eq!(snapshot.bytes, all[all.len().saturating_sub(7)..]);
        }
    }

    #[test]
    fn a_new_writer_continues_where_the_last_one_stopped() {
        let (_dir, path) = scratch();
        TailWriter::new(path.clone(), 8).append(b"abc").unwrap();
        TailWriter::new(path.clone(), 8).append(b"def").unwrap();
        assert_holds(&path, 0, 6, b"abcdef");
        // Another size: the file is replaced, the newest bytes and offsets kept.
        TailWriter::new(path.clone(), 4).append(b"g").unwrap();
        assert_holds(&path, 3, 7, b"defg");
    }

    #[test]
    fn reading_from_an_offset_and_what_was_missed() {
        let (_dir, path) = scratch();
        let mut writer = TailWriter::new(path.clone(), 4);
        writer.append(b"abcdef").unwrap();
        let file = open(&path).unwrap().unwrap();
        let snapshot = Snapshot::read_from(&file, 5).unwrap().unwrap();
        assert_eq!((snapshot.begin, snapshot.bytes.as_slice()), (5, &b"f"[..]));
        // Offset 0 is gone: the snapshot starts at the oldest byte held.
        let snapshot = Snapshot::read_from(&file, 0).unwrap().unwrap();
        assert_eq!(
            (snapshot.begin, snapshot.bytes.as_slice()),
            (2, &b"cdef"[..])
        );
    }

    /// A reader racing the writer only ever gets bytes that are exactly the output at
    /// the offsets the snapshot claims: never a torn mix of old and new.
    #[test]
    fn a_concurrent_reader_never_sees_torn_bytes() {
        let (_dir, path) = scratch();
        // The whole output is known in advance: byte at offset o is a function of o.
        let byte_at = |o: u64| b'a' + (o * 7 % 26) as u8;
        let mut writer = TailWriter::new(path.clone(), 97);
        writer.append(&[byte_at(0)]).unwrap();
        let writing = std::thread::spawn(move || {
            let mut offset = 1u64;
            for round in 0..20_000u64 {
                let length = 1 + round % 150; // sometimes more than the ring
                let piece: Vec<u8> = (offset..offset + length).map(byte_at).collect();
                writer.append(&piece).unwrap();
                offset += length;
            }
            offset
        });
        let file = open(&path).unwrap().unwrap();
        let mut snapshots = 0;
        while !writing.is_finished() {
            let snapshot = Snapshot::read(&file).unwrap().unwrap();
            assert!(snapshot.end - snapshot.begin <= 97);
            assert_eq!(snapshot.bytes.len() as u64, snapshot.end - snapshot.begin);
            for (i, &byte) in snapshot.bytes.iter().enumerate() {
                assert_eq!(byte, byte_at(snapshot.begin + i as u64), "{snapshot:?}");
            }
            snapshots += 1;
        }
        let end = writing.join().unwrap();
        let last = Snapshot::read(&file).unwrap().unwrap();
        assert_eq!(last.end, end);
        assert!(snapshots > 0);
    }

    #[test]
    fn last_line() {
        let snapshot = |bytes: &[u8]| Snapshot {
            begin: 0,
            end: bytes.len() as u64,
            bytes: bytes.to_vec(),
        };
        assert_eq!(snapshot(b"a\nb\n").last_line(), Some(&b"b"[..]));
        assert_eq!(snapshot(b"a\nbc").last_line(), Some(&b"bc"[..]));
        assert_eq!(snapshot(b"only").last_line(), Some(&b"only"[..]));
        assert_eq!(snapshot(b"").last_line(), None);
    }

    #[test]
    fn a_huge_sparse_file_is_not_a_tail_and_is_never_allocated() {
        let (_dir, path) = scratch();
        let mut header = [0u8; HEADER as usize];
        header[..16].copy_from_slice(MAGIC);
        header[24..32].copy_from_slice(&(1u64 << 40).to_le_bytes());
        std::fs::write(&path, header).unwrap();
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(HEADER + (1 << 40))
            .unwrap();
        let file = open(&path).unwrap().unwrap();
        assert_eq!(Snapshot::read(&file).unwrap(), None);
        assert_eq!(Snapshot::read_last(&file, 1024).unwrap(), None);
        assert_replaced(&path);
    }

    #[test]
    fn not_a_tail() {
        let (_dir, path) = scratch();
        std::fs::write(&path, b"something else entirely, not a tail").unwrap();
        let file = open(&path).unwrap().unwrap();
        assert_eq!(Snapshot::read(&file).unwrap(), None);
        assert_replaced(&path);
    }
}
