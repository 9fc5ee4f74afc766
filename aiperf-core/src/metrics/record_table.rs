//! The per-request metric values of a run, stored by column index rather than by name: one
//! flat `f64` row per request (NaN where a metric has no value) and one flat buffer per list
//! metric. This is what `profile_export.jsonl` is written from and what goodput reads; it
//! keeps 100k requests in a few contiguous allocations instead of a map per request.

use super::table::{METRICS, MetricId, MetricKind, Population};

/// How a profiling request ended, for choosing which statistics its values enter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    Succeeded,
    Errored,
    Cancelled,
}

impl Ending {
    /// Whether a request that ended so belongs to `population`.
    pub(crate) fn is_in(self, population: Population) -> bool {
        match population {
            Population::Succeeded => self == Self::Succeeded,
            Population::Failed => self != Self::Succeeded,
            Population::Sent => true,
        }
    }
}

/// The values of every computed per-request metric, for every profiling request.
#[derive(Debug, Clone, Default)]
pub(crate) struct RecordTable {
    /// Column of each single-valued metric, by [`MetricId`]; `None` when not computed.
    slot_of: Vec<Option<usize>>,
    /// Buffer of each list metric, by [`MetricId`]; `None` when not computed.
    list_of: Vec<Option<usize>>,
    /// Columns per row.
    width: usize,
    /// Row-major values; NaN = no value.
    values: Vec<f64>,
    /// Per list metric: all values, and where each row's values end.
    lists: Vec<(Vec<f64>, Vec<usize>)>,
    /// Per row: the index of its record in the slice given to the analysis.
    sources: Vec<usize>,
    /// Per row: how the request ended.
    endings: Vec<Ending>,
}

impl RecordTable {
    /// An empty table with a column for each metric of `active`.
    pub(crate) fn new(active: &[bool], capacity: usize) -> Self {
        let mut table = Self {
            slot_of: vec![None; METRICS.len()],
            list_of: vec![None; METRICS.len()],
            ..Self::default()
        };
        for def in METRICS.iter().filter(|def| active[def.id as usize]) {
            match def.kind {
                MetricKind::Record { .. } => {
                    table.slot_of[def.id as usize] = Some(table.width);
                    table.width += 1;
                }
                MetricKind::RecordList { .. } => {
                    table.list_of[def.id as usize] = Some(table.lists.len());
                    table.lists.push((Vec::new(), Vec::with_capacity(capacity)));
                }
                MetricKind::Scalar { .. } => {}
            }
        }
        table.values.reserve(capacity * table.width);
        table.sources.reserve(capacity);
        table.endings.reserve(capacity);
        table
    }

    /// The column of a single-valued metric, if computed.
    pub(crate) fn slot(&self, id: MetricId) -> Option<usize> {
        self.slot_of[id as usize]
    }

    /// The list buffer of a list metric, if computed.
    pub(crate) fn list_slot(&self, id: MetricId) -> Option<usize> {
        self.list_of[id as usize]
    }

    /// Appends a row of NaNs for record `source` and returns its index.
    pub(crate) fn push_row(&mut self, source: usize, ending: Ending) -> usize {
        self.values
            .extend(std::iter::repeat_n(f64::NAN, self.width));
        self.sources.push(source);
        self.endings.push(ending);
        self.sources.len() - 1
    }

    /// Sets a value of the last row.
    pub(crate) fn set(&mut self, slot: usize, value: f64) {
        let start = self.values.len() - self.width;
        self.values[start + slot] = value;
    }

    /// The buffer the last row's list values are appended to.
    pub(crate) fn list_buffer(&mut self, list: usize) -> &mut Vec<f64> {
        &mut self.lists[list].0
    }

    /// Ends the last row's lists.
    pub(crate) fn finish_row(&mut self) {
        for (values, ends) in &mut self.lists {
            ends.push(values.len());
        }
    }

    /// The number of rows.
    pub(crate) fn len(&self) -> usize {
        self.sources.len()
    }

    /// A row's value in column `slot`.
    pub(crate) fn value_at(&self, row: usize, slot: usize) -> Option<f64> {
        let v = self.values[row * self.width + slot];
        (!v.is_nan()).then_some(v)
    }

    /// A row's values of list `list`.
    pub(crate) fn list_at(&self, row: usize, list: usize) -> &[f64] {
        let (values, ends) = &self.lists[list];
        let start = if row == 0 { 0 } else { ends[row - 1] };
        &values[start..ends[row]]
    }

    /// All values of list `list`.
    pub(crate) fn list_values(&self, list: usize) -> &[f64] {
        &self.lists[list].0
    }

    /// The values of column `slot` over the rows in `population`.
    pub(crate) fn column(&self, slot: usize, population: Population) -> Vec<f64> {
        (0..self.len())
            .filter(|&row| self.endings[row].is_in(population))
            .filter_map(|row| self.value_at(row, slot))
            .collect()
    }

    /// One row.
    pub(crate) fn row(&self, row: usize) -> RecordRow<'_> {
        RecordRow { table: self, row }
    }
}

/// A per-request value: one number or, for inter-chunk latency, a list.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RecordValue<'a> {
    /// One number, in the metric's unit.
    Single(f64),
    /// Several, in the metric's unit.
    List(&'a [f64]),
}

/// The metric values of one profiling request.
#[derive(Debug, Clone, Copy)]
pub struct RecordRow<'a> {
    table: &'a RecordTable,
    row: usize,
}

impl<'a> RecordRow<'a> {
    /// The index of the request's record in the slice the report was computed from.
    pub fn source_index(&self) -> usize {
        self.table.sources[self.row]
    }

    /// A single-valued metric's value, in its unit.
    pub fn value(&self, id: MetricId) -> Option<f64> {
        self.table.value_at(self.row, self.table.slot(id)?)
    }

    /// A list metric's values, in its unit; `None` when it has none.
    pub fn list(&self, id: MetricId) -> Option<&'a [f64]> {
        let values = self.table.list_at(self.row, self.table.list_slot(id)?);
        (!values.is_empty()).then_some(values)
    }

    /// Every metric with a value for this request, in table order.
    pub fn values(&self) -> impl Iterator<Item = (MetricId, RecordValue<'a>)> + 'a {
        let row = *self;
        METRICS.iter().filter_map(move |def| match def.kind {
            MetricKind::Record { .. } => {
                row.value(def.id).map(|v| (def.id, RecordValue::Single(v)))
            }
            MetricKind::RecordList { .. } => {
                row.list(def.id).map(|v| (def.id, RecordValue::List(v)))
            }
            MetricKind::Scalar { .. } => None,
        })
    }
}
