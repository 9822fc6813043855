//! Whether a [`FileRegion`]'s pages are in the page cache: the network layer sends a resident
//! region with `sendfile` on a runtime thread, and reads a cold one on the blocking pool.

use std::io;
use std::os::fd::AsRawFd;

use super::FileRegion;

impl FileRegion {
    /// How many of the pages holding the region are in the page cache, of how many:
    /// `mincore(2)` on a mapping of them (which faults nothing in).
    pub fn resident_pages(&self) -> io::Result<(usize, usize)> {
        if self.len == 0 {
            return Ok((0, 0));
        }
        // SAFETY: sysconf has no preconditions.
        let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
            n if n > 0 => n as u64,
            _ => return Err(io::Error::last_os_error()),
        };
        let start = self.position - self.position % page;
        let too_large = || io::Error::other("region beyond the address space");
        let len = (self.position + self.len as u64)
            .checked_sub(start)
            .and_then(|l| usize::try_from(l).ok())
            .ok_or_else(too_large)?;
        let offset = libc::off_t::try_from(start).map_err(|_| too_large())?;
        // SAFETY: a new read-only shared mapping of the region's file; it is only passed to
        // mincore and unmapped below, never dereferenced. The region holds the file open.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                self.file.as_raw_fd(),
                offset,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mut pages = vec![0u8; len.div_ceil(page as usize)];
        // SAFETY: `addr`..`addr + len` is the mapping made above; `pages` has one byte per page.
        let rc = unsafe { libc::mincore(addr, len, pages.as_mut_ptr()) };
        let error = io::Error::last_os_error();
        // SAFETY: unmaps exactly the mapping made above.
        unsafe { libc::munmap(addr, len) };
        if rc != 0 {
            return Err(error);
        }
        Ok((pages.iter().filter(|p| *p & 1 == 1).count(), pages.len()))
    }

    /// Whether every page of the region is in the page cache, so that `sendfile` will not wait
    /// for the disk. Any failure counts as not resident, which only costs the cold path's copy.
    pub fn is_resident(&self) -> bool {
        self.resident_pages()
            .is_ok_and(|(resident, total)| resident == total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Arc;

    #[test]
    fn a_region_is_resident_until_its_pages_are_evicted() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("segment");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&vec![7u8; 1 << 20]).unwrap();
        f.sync_all().unwrap();
        let file = Arc::new(std::fs::File::open(&path).unwrap());
        let region = |position: u64, len: usize| FileRegion {
            file: file.clone(),
            position,
            len,
        };
        // Just written: in the page cache.
        assert!(region(1000, 300_000).is_resident());
        assert!(region(0, 0).is_resident());
        // SAFETY: an advisory call on an open descriptor.
        let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0);
        if region(0, 4096).is_resident() {
            eprintln!("skipped: this file system kept the pages after POSIX_FADV_DONTNEED");
            return;
        }
        assert!(!region(1000, 300_000).is_resident());
        // One page read back is resident again, the rest of the region not.
        let mut byte = [0u8; 1];
        std::os::unix::fs::FileExt::read_exact_at(&*file, &mut byte, 600_000).unwrap();
        assert!(region(600_000, 1).is_resident());
        assert!(!region(0, 1 << 20).is_resident());
    }
}
