//! Kafka's small text files: offset checkpoints, `leader-epoch-checkpoint`, `meta.properties`.
//! Each is replaced atomically (temp file, fsync, rename, fsync of the directory) so that a crash
//! leaves either the old or the new file, never half of one.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use super::error::{IoContext, LogError, Result};

pub const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";
pub const REPLICATION_OFFSET_FILE: &str = "replication-offset-checkpoint";
pub const LOG_START_OFFSET_FILE: &str = "log-start-offset-checkpoint";
pub const CLEANER_OFFSET_FILE: &str = "cleaner-offset-checkpoint";
pub const LEADER_EPOCH_FILE: &str = "leader-epoch-checkpoint";
pub const META_PROPERTIES_FILE: &str = "meta.properties";
pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";

/// Writes `contents` to `path` so that readers only ever see a whole file.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension(match path.extension() {
        Some(ext) => format!("{}.tmp", ext.to_string_lossy()),
        None => "tmp".to_string(),
    });
    {
        let mut f = File::create(&tmp).at(&tmp)?;
        f.write_all(contents).at(&tmp)?;
        f.sync_all().at(&tmp)?;
    }
    fs::rename(&tmp, path).at(path)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Makes a rename or a file creation in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// Parses the shared envelope: version 0, a count, then that many lines of fields.
fn parse_envelope<'a>(path: &Path, text: &'a str) -> Result<Vec<Vec<&'a str>>> {
    let bad = |reason: String| LogError::BadCheckpoint {
        path: path.to_path_buf(),
        reason,
    };
    if text.trim().is_empty() {
        // Kafka creates every checkpoint file empty before its first write.
        return Ok(Vec::new());
    }
    let mut lines = text.lines();
    let version = lines.next().unwrap_or("").trim();
    if version != "0" {
        return Err(bad(format!("unsupported version {version:?}")));
    }
    let count: usize = lines
        .next()
        .unwrap_or("")
        .trim()
        .parse()
        .map_err(|_| bad("missing or malformed entry count".into()))?;
    let entries: Vec<Vec<&str>> = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    if entries.len() != count {
        return Err(bad(format!(
            "header says {count} entries, file has {}",
            entries.len()
        )));
    }
    Ok(entries)
}

fn read_text(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LogError::io(path, e)),
    }
}

/// `<topic> <partition> <offset>` per line; keyed by the partition directory name
/// (`<topic>-<partition>`), which is how the log manager finds its logs.
pub fn read_offsets(path: &Path) -> Result<BTreeMap<(String, i32), i64>> {
    let Some(text) = read_text(path)? else {
        return Ok(BTreeMap::new());
    };
    let mut out = BTreeMap::new();
    for fields in parse_envelope(path, &text)? {
        let parsed = match fields.as_slice() {
            [topic, partition, offset] => partition
                .parse::<i32>()
                .ok()
                .zip(offset.parse::<i64>().ok())
                .map(|(p, o)| ((topic.to_string(), p), o)),
            _ => None,
        };
        let (key, offset) = parsed.ok_or_else(|| LogError::BadCheckpoint {
            path: path.to_path_buf(),
            reason: format!("malformed line {:?}", fields.join(" ")),
        })?;
        out.insert(key, offset);
    }
    Ok(out)
}

pub fn write_offsets(path: &Path, offsets: &BTreeMap<(String, i32), i64>) -> Result<()> {
    let mut text = format!("0\n{}\n", offsets.len());
    for ((topic, partition), offset) in offsets {
        text.push_str(&format!("{topic} {partition} {offset}\n"));
    }
    write_atomically(path, text.as_bytes())
}

/// `leader-epoch-checkpoint`: `<epoch> <start offset>` per line, epochs increasing; `None`
/// when there is no such file.
pub fn read_leader_epochs(path: &Path) -> Result<Option<Vec<(i32, i64)>>> {
    let Some(text) = read_text(path)? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for fields in parse_envelope(path, &text)? {
        let entry = match fields.as_slice() {
            [epoch, offset] => epoch.parse::<i32>().ok().zip(offset.parse::<i64>().ok()),
            _ => None,
        };
        out.push(entry.ok_or_else(|| LogError::BadCheckpoint {
            path: path.to_path_buf(),
            reason: format!("malformed line {:?}", fields.join(" ")),
        })?);
    }
    Ok(Some(out))
}

pub fn write_leader_epochs(path: &Path, epochs: &[(i32, i64)]) -> Result<()> {
    let mut text = format!("0\n{}\n", epochs.len());
    for (epoch, offset) in epochs {
        text.push_str(&format!("{epoch} {offset}\n"));
    }
    write_atomically(path, text.as_bytes())
}

/// `meta.properties` as Java's `Properties.store` writes it. Returns the key/value pairs.
pub fn read_properties(path: &Path) -> Result<Option<BTreeMap<String, String>>> {
    let Some(text) = read_text(path)? else {
        return Ok(None);
    };
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        if let Some((k, v)) = line.split_once(['=', ':']) {
            out.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    Ok(Some(out))
}

pub fn write_properties(path: &Path, props: &BTreeMap<String, String>) -> Result<()> {
    let mut text = String::from("#\n");
    text.push_str(&format!("#{}\n", java_date_now()));
    for (k, v) in props {
        text.push_str(&format!("{k}={v}\n"));
    }
    write_atomically(path, text.as_bytes())
}

/// Java's `Date.toString()` in UTC, which is what the comment line of `Properties.store` holds.
fn java_date_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(month - 1) as usize];
    format!(
        "{weekday} {mon} {day:02} {:02}:{:02}:{:02} UTC {year}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_trip_in_kafkas_text_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RECOVERY_POINT_FILE);
        let mut m = BTreeMap::new();
        m.insert(("orders".to_string(), 0), 368_769);
        m.insert(("my-topic.x".to_string(), 12), 5);
        write_offsets(&path, &m).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text, "0\n2\nmy-topic.x 12 5\norders 0 368769\n");
        assert_eq!(read_offsets(&path).unwrap(), m);
        assert!(
            !dir.path()
                .join(format!("{RECOVERY_POINT_FILE}.tmp"))
                .exists()
        );
    }

    #[test]
    fn empty_or_missing_checkpoints_mean_no_entries_and_bad_ones_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        assert!(read_offsets(&path).unwrap().is_empty());
        fs::write(&path, "").unwrap();
        assert!(read_offsets(&path).unwrap().is_empty());
        for bad in ["1\n0\n", "0\n2\na 0 1\n", "0\n1\na zero 1\n", "0\nx\n"] {
            fs::write(&path, bad).unwrap();
            assert!(read_offsets(&path).is_err(), "{bad:?}");
        }
        fs::write(&path, "0\n2\n0 0\n3 1500\n").unwrap();
        assert_eq!(
            read_leader_epochs(&path).unwrap(),
            Some(vec![(0, 0), (3, 1500)])
        );
    }

    #[test]
    fn java_date_looks_like_javas() {
        let d = java_date_now();
        assert_eq!(d.split(' ').count(), 6, "{d}");
        assert!(d.contains(" UTC "));
    }
}
