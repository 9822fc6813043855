//! `odradek dump-log`: prints segments, indexes and snapshots the way Kafka's
//! `kafka-dump-log.sh --deep-iteration` does, so its output can be diffed against Kafka's.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::log::batch::{self, BatchHeader, codec_name};
use crate::log::error::{IoContext, LogError, Result};
use crate::log::producer_state::snapshot;
use crate::log::records::{self, Record};
use crate::log::segment::read_entry_info;
use crate::log::txn_index::TxnIndex;

/// Dumps one file, chosen by its suffix, to `out`.
pub fn dump_file(path: &Path, print_data: bool, out: &mut impl Write) -> Result<()> {
    let w = |out: &mut dyn Write, s: String| {
        writeln!(out, "{s}").map_err(|e| LogError::io("<stdout>", e))
    };
    w(out, format!("Dumping {}", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let base: i64 = name
        .split('.')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    match path.extension().and_then(|e| e.to_str()) {
        Some("log") => dump_segment(path, base, print_data, out),
        // Indexes are parsed from a plain read: a dump must never map, grow or create a file.
        Some("index") => {
            let data = std::fs::read(path).at(path)?;
            for e in data.chunks_exact(8) {
                let rel = i32::from_be_bytes([e[0], e[1], e[2], e[3]]);
                let pos = i32::from_be_bytes([e[4], e[5], e[6], e[7]]);
                if rel == 0 && pos == 0 && data.len() > 8 {
                    break; // preallocated tail of an active segment's index
                }
                w(
                    out,
                    format!("offset: {} position: {pos}", base + rel as i64),
                )?;
            }
            Ok(())
        }
        Some("timeindex") => {
            let data = std::fs::read(path).at(path)?;
            for e in data.chunks_exact(12) {
                let ts = i64::from_be_bytes(e[..8].try_into().unwrap_or([0; 8]));
                let rel = i32::from_be_bytes([e[8], e[9], e[10], e[11]]);
                if ts == 0 && rel == 0 {
                    break;
                }
                w(
                    out,
                    format!("timestamp: {ts} offset: {}", base + rel as i64),
                )?;
            }
            Ok(())
        }
        Some("txnindex") => {
            for t in TxnIndex::open(path)?.entries() {
                w(
                    out,
                    format!(
                        "version: 0 producerId: {} firstOffset: {} lastOffset: {} lastStableOffset: {}",
                        t.producer_id, t.first_offset, t.last_offset, t.last_stable_offset
                    ),
                )?;
            }
            Ok(())
        }
        Some("snapshot") => dump_snapshot(path, out),
        _ => w(out, format!("Ignoring unknown file {}", path.display())),
    }
}

fn dump_segment(path: &Path, base: i64, print_data: bool, out: &mut impl Write) -> Result<()> {
    let file = File::open(path).at(path)?;
    let size = file.metadata().at(path)?.len();
    let io = |e: std::io::Error| LogError::io("<stdout>", e);
    writeln!(out, "Starting offset: {base}").map_err(io)?;
    let mut pos = 0u64;
    let mut buf = Vec::new();
    while let Some(e) = read_entry_info(&file, pos, size).map_err(|e| with_path(e, path))? {
        buf.resize(e.size as usize, 0);
        file.read_exact_at(&mut buf, pos).at(path)?;
        match e.header {
            Some(h) => {
                let valid = batch::compute_crc(&buf) == h.crc;
                writeln!(out, "{}", batch_line(&h, pos, valid)).map_err(io)?;
                if print_data {
                    match records::decode_batch(&buf) {
                        Ok((_, recs)) => {
                            for r in &recs {
                                writeln!(out, "{}", record_line(&h, r)).map_err(io)?;
                            }
                        }
                        Err(err) => {
                            writeln!(out, "| records could not be decoded: {err}").map_err(io)?
                        }
                    }
                }
            }
            None => {
                writeln!(
                    out,
                    "offset: {} position: {pos} magic: {} size: {} (legacy message)",
                    e.last_offset, e.magic, e.size
                )
                .map_err(io)?;
            }
        }
        pos += e.size;
    }
    if pos < size {
        writeln!(
            out,
            "Found {} invalid bytes at the end of {}",
            size - pos,
            path.display()
        )
        .map_err(io)?;
    }
    Ok(())
}

fn with_path(e: LogError, path: &Path) -> LogError {
    match e {
        LogError::Io { source, .. } => LogError::io(path, source),
        other => other,
    }
}

fn batch_line(h: &BatchHeader, position: u64, valid: bool) -> String {
    format!(
        "baseOffset: {} lastOffset: {} count: {} baseSequence: {} lastSequence: {} producerId: {} producerEpoch: {} partitionLeaderEpoch: {} isTransactional: {} isControl: {} position: {} {}: {} size: {} magic: {} compresscodec: {} crc: {} isvalid: {}",
        h.base_offset,
        h.last_offset(),
        h.records_count,
        h.base_sequence,
        h.last_sequence(),
        h.producer_id,
        h.producer_epoch,
        h.partition_leader_epoch,
        h.is_transactional(),
        h.is_control(),
        position,
        timestamp_type(h),
        h.max_timestamp,
        h.size(),
        h.magic,
        codec_name(h.compression()),
        h.crc,
        valid
    )
}

fn timestamp_type(h: &BatchHeader) -> &'static str {
    if h.is_log_append_time() {
        "LogAppendTime"
    } else {
        "CreateTime"
    }
}

fn record_line(h: &BatchHeader, r: &Record) -> String {
    let sequence = if h.base_sequence >= 0 {
        h.base_sequence
            .wrapping_add((r.offset - h.base_offset) as i32)
    } else {
        -1
    };
    let len = |b: &Option<bytes::Bytes>| b.as_ref().map_or(-1, |b| b.len() as i64);
    let header_keys: Vec<String> = r
        .headers
        .iter()
        .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
        .collect();
    let mut line = format!(
        "| offset: {} {}: {} keysize: {} valuesize: {} sequence: {} headerKeys: [{}]",
        r.offset,
        timestamp_type(h),
        r.timestamp,
        len(&r.key),
        len(&r.value),
        sequence,
        header_keys.join(",")
    );
    if h.is_control() {
        let key = r.key.as_deref().unwrap_or(&[]);
        let kind = match key.get(2..4).map(|b| i16::from_be_bytes([b[0], b[1]])) {
            Some(0) => "ABORT".to_string(),
            Some(1) => "COMMIT".to_string(),
            other => format!("UNKNOWN({other:?})"),
        };
        let value = r.value.as_deref().unwrap_or(&[]);
        let epoch = value
            .get(2..6)
            .map_or(-1, |b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        line.push_str(&format!(" endTxnMarker: {kind} coordinatorEpoch: {epoch}"));
        return line;
    }
    if let Some(k) = &r.key {
        line.push_str(&format!(" key: {}", String::from_utf8_lossy(k)));
    }
    if let Some(v) = &r.value {
        line.push_str(&format!(" payload: {}", String::from_utf8_lossy(v)));
    }
    if !r.headers.is_empty() {
        // Kafka prints only header keys; the values are what an operator usually wants to see.
        let hs: Vec<String> = r
            .headers
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    String::from_utf8_lossy(k),
                    v.as_ref()
                        .map_or("null".into(), |v| String::from_utf8_lossy(v).into_owned())
                )
            })
            .collect();
        line.push_str(&format!(" headers: [{}]", hs.join(",")));
    }
    line
}

fn dump_snapshot(path: &Path, out: &mut impl Write) -> Result<()> {
    for e in snapshot::read_entries(path)? {
        let txn = if e.current_txn_first_offset < 0 {
            "None".to_string()
        } else {
            format!("Some({})", e.current_txn_first_offset)
        };
        writeln!(
            out,
            "producerId: {} producerEpoch: {} coordinatorEpoch: {} currentTxnFirstOffset: {txn} firstSequence: {} lastSequence: {} lastOffset: {} offsetDelta: {} timestamp: {}",
            e.producer_id,
            e.epoch,
            e.coordinator_epoch,
            e.last_sequence - e.offset_delta,
            e.last_sequence,
            e.last_offset,
            e.offset_delta,
            e.timestamp,
        )
        .map_err(|e| LogError::io("<stdout>", e))?;
    }
    Ok(())
}

/// `odradek dump-log`: kafka-dump-log.sh's flags.
#[derive(clap::Args)]
pub struct Args {
    #[arg(long, num_args = 1.., value_delimiter = ',', required = true)]
    files: Vec<std::path::PathBuf>,
    #[arg(long)]
    print_data_log: bool,
    /// Accepted for kafka-dump-log.sh compatibility; records are always iterated.
    #[arg(long)]
    deep_iteration: bool,
}

impl Args {
    /// Dumps every file to standard output; a file that cannot be read is reported on standard
    /// error and fails the exit status, after the others are dumped.
    pub fn run(self) -> std::process::ExitCode {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let mut ok = true;
        for f in &self.files {
            if let Err(e) = dump_file(f, self.print_data_log, &mut out) {
                eprintln!("error: {e}");
                ok = false;
            }
        }
        if ok {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::FAILURE
        }
    }
}
