//! The values of one metric over a whole run, in bounded memory: a buffer of
//! [`BUFFERED_VALUES`] values, emptied into an unnamed temporary file each time it fills, and
//! read back whole once, when the run is over and the statistics are computed.
//!
//! This is what lets records be dropped as soon as they are processed (DESIGN.md §4: "records
//! are kept compact and processed after or beside the run"): a run of a million requests holds
//! the same memory as a run of a thousand, while the percentiles stay exact (every value is
//! kept, only not in memory). If the temporary file cannot be created or written, the values
//! stay in memory: the run pays in memory, not in lost values.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// Values kept in memory before they go to the file: 256 KiB per metric.
pub(crate) const BUFFERED_VALUES: usize = 32 * 1024;

/// The size of one value in the file (little-endian `f64`).
const VALUE_BYTES: usize = size_of::<f64>();

/// Every value one metric took over a run.
#[derive(Debug)]
pub(crate) struct ValueColumn {
    /// The values not in the file yet.
    buffer: Vec<f64>,
    /// How many values fill the buffer.
    buffered: usize,
    /// The temporary file and how many values it holds, once the buffer has filled.
    spill: Option<(File, usize)>,
    /// The temporary file could not be created or written: keep everything in memory.
    in_memory_only: bool,
}

impl Default for ValueColumn {
    fn default() -> Self {
        Self::with_buffer(BUFFERED_VALUES)
    }
}

impl ValueColumn {
    /// An empty column that spills every `buffered` values.
    pub(crate) fn with_buffer(buffered: usize) -> Self {
        Self {
            buffer: Vec::new(),
            buffered: buffered.max(1),
            spill: None,
            in_memory_only: false,
        }
    }

    /// Adds a value.
    pub(crate) fn push(&mut self, value: f64) {
        self.buffer.push(value);
        if self.buffer.len() >= self.buffered
            && !self.in_memory_only
            && let Err(_unwritable) = self.spill_buffer()
        {
            self.in_memory_only = true;
        }
    }

    /// Moves the buffer's values to the end of the temporary file (created on first use).
    fn spill_buffer(&mut self) -> io::Result<()> {
        let (file, written) = match &mut self.spill {
            Some(spill) => spill,
            None => self.spill.insert((tempfile::tempfile()?, 0)),
        };
        let bytes: Vec<u8> = self.buffer.iter().flat_map(|v| v.to_le_bytes()).collect();
        // A failed write may leave part of the bytes in the file: only whole writes are
        // counted, and reading back stops at the count.
        file.write_all(&bytes)?;
        *written += self.buffer.len();
        self.buffer.clear();
        Ok(())
    }

    /// Every value, in the order they were added. Fails only if the temporary file cannot be
    /// read back.
    pub(crate) fn into_values(self) -> io::Result<Vec<f64>> {
        let Some((mut file, written)) = self.spill else {
            return Ok(self.buffer);
        };
        let mut values = Vec::with_capacity(written + self.buffer.len());
        file.seek(SeekFrom::Start(0))?;
        let mut reader =
            io::BufReader::with_capacity(1 << 16, file.take((written * VALUE_BYTES) as u64));
        let mut bytes = [0; VALUE_BYTES];
        for _ in 0..written {
            reader.read_exact(&mut bytes)?;
            values.push(f64::from_le_bytes(bytes));
        }
        values.extend(self.buffer);
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_back_whole_and_in_order_across_spills() {
        let mut column = ValueColumn::with_buffer(4);
        let values: Vec<f64> = (0..11).map(|i| f64::from(i) * 1.5 - 3.0).collect();
        for &v in &values {
            column.push(v);
        }
        assert!(column.spill.is_some(), "11 values with a buffer of 4 spill");
        assert_eq!(column.spill.as_ref().map(|(_, n)| *n), Some(8));
        assert_eq!(column.into_values().unwrap(), values);
    }

    #[test]
    fn a_small_column_never_touches_a_file() {
        let mut column = ValueColumn::default();
        column.push(f64::NAN);
        column.push(f64::INFINITY);
        assert!(column.spill.is_none());
        let values = column.into_values().unwrap();
        assert!(values[0].is_nan() && values[1] == f64::INFINITY);
    }

    #[test]
    fn memory_holds_at_most_one_buffer() {
        let mut column = ValueColumn::with_buffer(1000);
        for i in 0..100_000 {
            column.push(f64::from(i));
        }
        assert!(
            column.buffer.capacity() <= 2 * 1000,
            "{}",
            column.buffer.capacity()
        );
        assert_eq!(
            column.into_values().unwrap().iter().sum::<f64>(),
            4_999_950_000.0
        );
    }
}
