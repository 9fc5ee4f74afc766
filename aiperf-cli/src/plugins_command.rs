//! `aiperf plugins`: the registry's run-time view (DESIGN.md §3), like AIPerf 0.13's
//! `aiperf plugins`.
//!
//! It builds the same [`Registries`] every other command
//! uses (builtins from the linkme slices, plugins from the table `build.rs` generated, then the
//! `--use-implementation` choices) and prints them:
//! - `aiperf plugins`: every category with its description, each name with its implementations
//!   (type, crate, version, priority, plugin or builtin, the selected one marked `*`);
//! - `aiperf plugins CATEGORY`: one category;
//! - `aiperf plugins CATEGORY NAME`: every implementation of one name, with its description;
//! - `--json`: the same as data; `--validate`: instantiates every implementation shown and
//!   reports those that fail (exit status 1 if any does).
//!
//! Listings also show what decides which endpoints and transports fit together (DESIGN.md §4):
//! each endpoint's wire format, and each transport's URL schemes and the wire formats it
//! carries, read from the selected implementation's metadata.

use std::fmt::Write;

use aiperf_core::endpoint::{EndpointCategory, WireFormat};
use aiperf_core::registries::{CategoryView, Registries, Validation};
use aiperf_core::registry::{Category, ImplementationInfo};
use aiperf_core::transport::TransportCategory;
use anyhow::Context;
use serde::Serialize;

use crate::exit;

/// Arguments of `aiperf plugins`.
#[derive(Debug, clap::Args)]
pub(crate) struct PluginsArgs {
    /// Show only this category (e.g. `endpoint`, `transport`).
    category: Option<String>,
    /// Show every implementation of this name in the category, with its description.
    name: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Instantiate every implementation shown and report those that fail (exit status 1).
    #[arg(long)]
    validate: bool,
    /// Select an implementation for a name, as other commands would (repeatable), e.g.
    /// `endpoint.chat=ChatEndpoint` or `endpoint.chat=aiperf-endpoints`.
    #[arg(
        long = "use-implementation",
        value_name = "CATEGORY.NAME=TYPE_OR_CRATE"
    )]
    use_implementation: Vec<String>,
}

/// Runs `aiperf plugins`: prints the listing, or the validation report with `--validate`.
pub(crate) fn run(args: PluginsArgs) -> anyhow::Result<u8> {
    let registries =
        crate::registries(&args.use_implementation).context("cannot build the plugin registry")?;
    let categories: Vec<&dyn CategoryView> = match &args.category {
        None => registries.categories().to_vec(),
        Some(name) => vec![registries.category(name)?],
    };
    let scope = Scope {
        categories,
        name: args.name.as_deref(),
    };
    if args.validate {
        let report = scope.validate()?;
        let failed = report
            .iter()
            .filter(|v| v.validation.error.is_some())
            .count();
        if args.json {
            print_json(&ValidationReport {
                validations: &report,
                failed,
            })?;
        } else {
            crate::stdout::print(&render_validation(&report, failed));
        }
        return Ok(if failed == 0 {
            exit::SUCCESS
        } else {
            exit::RUN_FAILED
        });
    }
    match (args.category.is_some(), scope.name) {
        (_, Some(name)) => {
            let category = scope.categories[0];
            let implementations = category.list_implementations(name)?;
            if args.json {
                print_json(&NameJson {
                    category: category.name(),
                    name,
                    implementations,
                    facts: facts(&registries, category.name(), name),
                })?;
            } else {
                crate::stdout::print(&render_detail(category, name, &implementations));
            }
        }
        (true, None) => {
            let listing = category_json(&registries, scope.categories[0])?;
            if args.json {
                print_json(&listing)?;
            } else {
                crate::stdout::print(&render_listing(&[listing]));
            }
        }
        (false, None) => {
            let categories = scope
                .categories
                .iter()
                .map(|c| category_json(&registries, *c))
                .collect::<anyhow::Result<Vec<_>>>()?;
            if args.json {
                print_json(&AllJson { categories })?;
            } else {
                crate::stdout::print(&render_listing(&categories));
            }
        }
    }
    Ok(exit::SUCCESS)
}

/// What the arguments select: some categories, and maybe one name in the (single) category.
struct Scope<'a> {
    categories: Vec<&'a dyn CategoryView>,
    name: Option<&'a str>,
}

impl Scope<'_> {
    /// Instantiates every implementation in scope. An unknown name is an error, as in listings.
    fn validate(&self) -> anyhow::Result<Vec<CategoryValidation>> {
        let mut out = Vec::new();
        for category in &self.categories {
            if let Some(name) = self.name {
                category.list_implementations(name)?;
            }
            out.extend(
                category
                    .validate()
                    .into_iter()
                    .filter(|v| self.name.is_none_or(|n| v.implementation.name == n))
                    .map(|validation| CategoryValidation {
                        category: category.name(),
                        validation,
                    }),
            );
        }
        Ok(out)
    }
}

#[derive(Serialize)]
struct AllJson {
    categories: Vec<CategoryJson>,
}

#[derive(Serialize)]
struct CategoryJson {
    name: &'static str,
    description: &'static str,
    names: Vec<NameJson<'static>>,
}

#[derive(Serialize)]
struct NameJson<'a> {
    category: &'static str,
    name: &'a str,
    implementations: Vec<ImplementationInfo>,
    #[serde(flatten)]
    facts: NameFacts,
}

/// What the selected implementation of a name says about fitting endpoints to transports.
#[derive(Debug, Default, Serialize)]
struct NameFacts {
    /// An endpoint's wire format.
    #[serde(skip_serializing_if = "Option::is_none")]
    wire_format: Option<WireFormat>,
    /// A transport's URL schemes (empty: used without --url).
    #[serde(skip_serializing_if = "Option::is_none")]
    url_schemes: Option<Vec<&'static str>>,
    /// The wire formats a transport carries.
    #[serde(skip_serializing_if = "Option::is_none")]
    wire_formats: Option<Vec<WireFormat>>,
}

impl NameFacts {
    /// The listing's extra column headers for these facts.
    fn headers(&self) -> &'static [&'static str] {
        match (&self.wire_format, &self.url_schemes) {
            (Some(_), _) => &["WIRE"],
            (None, Some(_)) => &["URLS", "CARRIES"],
            (None, None) => &[],
        }
    }

    /// The listing's extra cells, under [`NameFacts::headers`].
    fn cells(&self) -> Vec<String> {
        let formats = |formats: &[WireFormat]| {
            let names: Vec<&str> = formats.iter().map(|f| f.as_str()).collect();
            names.join(",")
        };
        let mut cells = Vec::new();
        if let Some(wire_format) = self.wire_format {
            cells.push(wire_format.to_string());
        }
        if let Some(schemes) = &self.url_schemes {
            cells.push(match schemes.as_slice() {
                [] => "-".to_owned(),
                schemes => {
                    let urls: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
                    urls.join(",")
                }
            });
            cells.push(formats(self.wire_formats.as_deref().unwrap_or_default()));
        }
        cells
    }
}

/// The facts of `name`'s selected implementation, built with its category's validation
/// context (none when it cannot be built, or the category has none).
fn facts(registries: &Registries, category: &str, name: &str) -> NameFacts {
    if category == EndpointCategory::NAME {
        let ctx = EndpointCategory::validation_context();
        if let Ok(endpoint) = registries.endpoint.create_instance(name, &ctx) {
            return NameFacts {
                wire_format: Some(endpoint.metadata().wire_format),
                ..NameFacts::default()
            };
        }
    } else if category == TransportCategory::NAME {
        let ctx = TransportCategory::validation_context();
        if let Ok(transport) = registries.transport.create_instance(name, &ctx) {
            let metadata = transport.metadata();
            return NameFacts {
                url_schemes: Some(metadata.url_schemes.to_vec()),
                wire_formats: Some(metadata.wire_formats.to_vec()),
                ..NameFacts::default()
            };
        }
    }
    NameFacts::default()
}

#[derive(Serialize)]
struct CategoryValidation {
    category: &'static str,
    #[serde(flatten)]
    validation: Validation,
}

#[derive(Serialize)]
struct ValidationReport<'a> {
    validations: &'a [CategoryValidation],
    failed: usize,
}

fn category_json(
    registries: &Registries,
    category: &dyn CategoryView,
) -> anyhow::Result<CategoryJson> {
    let names = category
        .names()
        .into_iter()
        .map(|name| {
            Ok(NameJson {
                category: category.name(),
                name,
                implementations: category.list_implementations(name)?,
                facts: facts(registries, category.name(), name),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(CategoryJson {
        name: category.name(),
        description: category.description(),
        names,
    })
}

fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("cannot write the listing as JSON")?;
    crate::stdout::print(&format!("{text}\n"));
    Ok(())
}

/// The overview: per category, its description and one aligned row per implementation.
fn render_listing(categories: &[CategoryJson]) -> String {
    const HEADER: [&str; 6] = ["NAME", "TYPE", "CRATE", "VERSION", "PRIORITY", "KIND"];
    let mut out = String::new();
    for (i, category) in categories.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "{}: {}", category.name, category.description);
        if category.names.is_empty() {
            out.push_str("  (no implementations in this build)\n");
            continue;
        }
        // Fact columns (wire format, URL schemes) when the category's names have facts.
        let extra = category
            .names
            .iter()
            .map(|name| name.facts.headers())
            .find(|headers| !headers.is_empty())
            .unwrap_or_default();
        let mut rows: Vec<Vec<String>> = vec![
            HEADER
                .iter()
                .chain(extra)
                .map(|h| (*h).to_owned())
                .collect(),
        ];
        let mut marks = vec![" "];
        for name in &category.names {
            for (j, info) in name.implementations.iter().enumerate() {
                let shown_name = if j == 0 { name.name } else { "" };
                let mut row = vec![
                    shown_name.to_owned(),
                    info.type_name.clone(),
                    info.crate_name.clone(),
                    info.version.clone(),
                    priority_cell(info),
                    kind(info).to_owned(),
                ];
                let mut cells = if j == 0 {
                    name.facts.cells()
                } else {
                    Vec::new()
                };
                cells.resize(extra.len(), String::new());
                row.extend(cells);
                rows.push(row);
                marks.push(if info.is_selected { "*" } else { " " });
            }
        }
        let widths: Vec<usize> = (0..rows[0].len())
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        for (row, mark) in rows.iter().zip(marks) {
            let mut line = format!("  {:<w$} {mark}", row[0], w = widths[0]);
            for (cell, width) in row.iter().zip(&widths).skip(1) {
                let _ = write!(line, " {cell:<width$} ");
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out.push_str(
        "\n* selected. Details: aiperf plugins CATEGORY NAME. \
         Switch: --use-implementation CATEGORY.NAME=TYPE_OR_CRATE\n",
    );
    out
}

/// The detail view of one name: every implementation with all its facts.
fn render_detail(category: &dyn CategoryView, name: &str, infos: &[ImplementationInfo]) -> String {
    let mut out = format!(
        "{} {name}: {} implementation{}\n",
        category.name(),
        infos.len(),
        if infos.len() == 1 { "" } else { "s" }
    );
    for info in infos {
        let mark = if info.is_selected { "*" } else { " " };
        let selected = if info.is_selected { " (selected)" } else { "" };
        let _ = writeln!(out, "\n{mark} {}{selected}", info.type_name);
        let _ = writeln!(out, "    crate:       {} {}", info.crate_name, info.version);
        let _ = match info.is_plugin {
            true => writeln!(out, "    kind:        plugin, priority {}", info.priority),
            false => writeln!(out, "    kind:        builtin"),
        };
        let _ = writeln!(out, "    description: {}", info.description);
    }
    if let Some(other) = infos.iter().find(|i| !i.is_selected) {
        let _ = writeln!(
            out,
            "\nSwitch with --use-implementation {}.{name}={}",
            category.name(),
            other.type_name
        );
    }
    out
}

fn render_validation(report: &[CategoryValidation], failed: usize) -> String {
    let rows: Vec<[String; 3]> = report
        .iter()
        .map(|v| {
            let info = &v.validation.implementation;
            [
                if v.validation.error.is_some() {
                    "FAIL"
                } else {
                    "ok"
                }
                .to_owned(),
                format!("{} {}", v.category, info.name),
                format!("{} ({} {})", info.type_name, info.crate_name, info.version),
            ]
        })
        .collect();
    let key_width = rows.iter().map(|r| r[1].chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (row, v) in rows.iter().zip(report) {
        let mut line = format!("{:<4}  {:<key_width$}  {}", row[0], row[1], row[2]);
        if let Some(error) = &v.validation.error {
            let _ = write!(line, ": {error}");
        }
        out.push_str(&line);
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "{} implementation{} validated, {failed} failed",
        report.len(),
        if report.len() == 1 { "" } else { "s" }
    );
    out
}

fn priority_cell(info: &ImplementationInfo) -> String {
    if info.is_plugin {
        info.priority.to_string()
    } else {
        "-".to_owned()
    }
}

fn kind(info: &ImplementationInfo) -> &'static str {
    if info.is_plugin { "plugin" } else { "builtin" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(type_name: &str, krate: &str, plugin: bool, selected: bool) -> ImplementationInfo {
        ImplementationInfo {
            name: "chat".into(),
            type_name: type_name.into(),
            crate_name: krate.into(),
            version: "0.1.0".into(),
            description: format!("{type_name} does chat"),
            is_plugin: plugin,
            is_selected: selected,
            priority: if plugin { 3 } else { 0 },
        }
    }

    #[test]
    fn listing_aligns_columns_and_marks_the_selected() {
        let category = CategoryJson {
            name: "endpoint",
            description: "API shapes",
            names: vec![NameJson {
                category: "endpoint",
                name: "chat",
                implementations: vec![
                    info("FastChat", "fast-chat", true, true),
                    info("ChatEndpoint", "aiperf-endpoints", false, false),
                ],
                facts: NameFacts::default(),
            }],
        };
        let expected = "\
endpoint: API shapes
  NAME   TYPE          CRATE             VERSION  PRIORITY  KIND
  chat * FastChat      fast-chat         0.1.0    3         plugin
         ChatEndpoint  aiperf-endpoints  0.1.0    -         builtin

* selected. Details: aiperf plugins CATEGORY NAME. Switch: --use-implementation CATEGORY.NAME=TYPE_OR_CRATE
";
        assert_eq!(render_listing(&[category]), expected);
    }

    #[test]
    fn validation_report_counts_failures() {
        let report = [
            CategoryValidation {
                category: "endpoint",
                validation: Validation {
                    implementation: info("FastChat", "fast-chat", true, true),
                    error: None,
                },
            },
            CategoryValidation {
                category: "endpoint",
                validation: Validation {
                    implementation: info("ChatEndpoint", "aiperf-endpoints", false, false),
                    error: Some("needs a model".into()),
                },
            },
        ];
        let expected = "\
ok    endpoint chat  FastChat (fast-chat 0.1.0)
FAIL  endpoint chat  ChatEndpoint (aiperf-endpoints 0.1.0): needs a model
2 implementations validated, 1 failed
";
        assert_eq!(render_validation(&report, 1), expected);
    }
}
