//! The per-request metric values of a run, stored by column index rather than by name. The
//! request being processed has one flat `f64` row (NaN where a metric has no value) and one
//! buffer per list metric: this is what its `profile_export.jsonl` line is written from and
//! what goodput reads. When the row is finished its values join each metric's
//! [`ValueColumn`], which keeps them for the statistics in bounded memory; the row is then
//! reused for the next request.

use std::io;

use super::table::{METRICS, MetricId, MetricKind, Population};
use super::value_column::ValueColumn;
use crate::record::Outcome;

/// How a profiling request ended, for choosing which statistics its values enter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    Succeeded,
    Errored,
    Cancelled,
}

impl Ending {
    /// How a request with this outcome ended.
    pub(crate) fn of(outcome: &Outcome) -> Self {
        match outcome {
            Outcome::Success => Self::Succeeded,
            Outcome::Error(_) => Self::Errored,
            Outcome::Cancelled(_) => Self::Cancelled,
        }
    }

    /// Whether a request that ended so belongs to `population`.
    pub(crate) fn is_in(self, population: Population) -> bool {
        match population {
            Population::Succeeded => self == Self::Succeeded,
            Population::Failed => self != Self::Succeeded,
            Population::Sent => true,
        }
    }
}

/// The per-request metrics of a run: the values of the request being processed (one row), and
/// for each metric every value that enters its statistics.
#[derive(Debug, Default)]
pub(crate) struct RecordTable {
    /// Column of each single-valued metric, by [`MetricId`]; `None` when not computed.
    slot_of: Vec<Option<usize>>,
    /// Buffer of each list metric, by [`MetricId`]; `None` when not computed.
    list_of: Vec<Option<usize>>,
    /// The requests whose values each column's statistics take.
    populations: Vec<Population>,
    /// The current row's values, one per column; NaN = no value.
    row: Vec<f64>,
    /// The current row's values of each list metric.
    row_lists: Vec<Vec<f64>>,
    /// Per column: the values of every finished row in the column's population.
    columns: Vec<ValueColumn>,
    /// Per list metric: the values of every finished row.
    list_columns: Vec<ValueColumn>,
}

impl RecordTable {
    /// An empty table with a column for each metric of `active`.
    pub(crate) fn new(active: &[bool]) -> Self {
        let mut table = Self {
            slot_of: vec![None; METRICS.len()],
            list_of: vec![None; METRICS.len()],
            ..Self::default()
        };
        for def in METRICS.iter().filter(|def| active[def.id as usize]) {
            match def.kind {
                MetricKind::Record { population, .. } => {
                    table.slot_of[def.id as usize] = Some(table.columns.len());
                    table.populations.push(population);
                    table.columns.push(ValueColumn::default());
                }
                MetricKind::RecordList { .. } => {
                    table.list_of[def.id as usize] = Some(table.list_columns.len());
                    table.list_columns.push(ValueColumn::default());
                }
                MetricKind::Scalar { .. } | MetricKind::TimeWeighted { .. } => {}
            }
        }
        table.row = vec![f64::NAN; table.columns.len()];
        table.row_lists = vec![Vec::new(); table.list_columns.len()];
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

    /// Starts the row of the next request: no values yet.
    pub(crate) fn start_row(&mut self) {
        self.row.fill(f64::NAN);
        self.row_lists.iter_mut().for_each(Vec::clear);
    }

    /// Sets a value of the current row.
    pub(crate) fn set(&mut self, slot: usize, value: f64) {
        self.row[slot] = value;
    }

    /// The buffer the current row's values of list `list` are appended to.
    pub(crate) fn list_buffer(&mut self, list: usize) -> &mut Vec<f64> {
        &mut self.row_lists[list]
    }

    /// Ends the current row of a request that ended so: its values enter the columns of the
    /// metrics whose population the request belongs to. The row stays readable until the next
    /// [`RecordTable::start_row`].
    pub(crate) fn finish_row(&mut self, ending: Ending) {
        for ((&value, column), &population) in self
            .row
            .iter()
            .zip(&mut self.columns)
            .zip(&self.populations)
        {
            if !value.is_nan() && ending.is_in(population) {
                column.push(value);
            }
        }
        for (values, column) in self.row_lists.iter().zip(&mut self.list_columns) {
            values.iter().for_each(|&v| column.push(v));
        }
    }

    /// The current row's value in column `slot`.
    pub(crate) fn value(&self, slot: usize) -> Option<f64> {
        let v = self.row[slot];
        (!v.is_nan()).then_some(v)
    }

    /// The current row's values of list `list`.
    pub(crate) fn list(&self, list: usize) -> &[f64] {
        &self.row_lists[list]
    }

    /// The current row.
    pub(crate) fn row(&self) -> RecordRow<'_> {
        RecordRow { table: self }
    }

    /// Every value of each metric's statistics, one metric at a time (each read back only
    /// when the iterator reaches it, so that memory holds one metric's values at once),
    /// ending the table. A column whose values cannot be read back is an error.
    pub(crate) fn into_columns(self) -> impl Iterator<Item = (MetricId, io::Result<Vec<f64>>)> {
        let mut columns: Vec<Option<ValueColumn>> = self.columns.into_iter().map(Some).collect();
        let mut lists: Vec<Option<ValueColumn>> = self.list_columns.into_iter().map(Some).collect();
        let (slot_of, list_of) = (self.slot_of, self.list_of);
        METRICS.iter().filter_map(move |def| {
            let column = match (slot_of[def.id as usize], list_of[def.id as usize]) {
                (Some(slot), _) => columns[slot].take(),
                (None, Some(list)) => lists[list].take(),
                (None, None) => None,
            }?;
            Some((def.id, column.into_values()))
        })
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

/// The metric values of one request, as [`crate::metrics::Analysis::add`] computed
/// them (what `profile_export.jsonl` writes for it).
#[derive(Debug, Clone, Copy)]
pub struct RecordRow<'a> {
    table: &'a RecordTable,
}

impl<'a> RecordRow<'a> {
    /// A single-valued metric's value, in its unit.
    pub fn value(&self, id: MetricId) -> Option<f64> {
        self.table.value(self.table.slot(id)?)
    }

    /// A list metric's values, in its unit; `None` when it has none.
    pub fn list(&self, id: MetricId) -> Option<&'a [f64]> {
        let values = self.table.list(self.table.list_slot(id)?);
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
            MetricKind::Scalar { .. } | MetricKind::TimeWeighted { .. } => None,
        })
    }
}
