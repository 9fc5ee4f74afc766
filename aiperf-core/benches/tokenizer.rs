//! The builtin tokenizer (o200k_base), ours against tiktoken-rs's, side by side: what building
//! one costs (paid once, at start-up or on first use), and counting ~4 KB of English prose
//! (what the dataset stage and the records after the run pay per prompt and per answer, see
//! DESIGN.md §4).
//!
//! `cargo bench -p aiperf-core --bench tokenizer`

use std::hint::black_box;

use aiperf_core::tokenizer::o200k::O200kBase;
use criterion::{Criterion, Throughput, criterion_main};

/// About 4 KB of English prose, with the punctuation, digits, contractions and line breaks of
/// a typical answer.
fn english() -> String {
    let paragraph = "The quick brown fox jumps over the lazy dog, doesn't it? In 2024, researchers \
        measured 1,234 samples across 56 sites; the results (see Table 3) weren't what they'd \
        expected. \"Throughput rose by 17.5%,\" they wrote, \"while latency fell.\" Meanwhile, \
        the team's benchmark ran for 3 hours and 45 minutes on 8 GPUs.\n\n";
    paragraph.repeat(4096usize.div_ceil(paragraph.len()))
}

fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("tokenizer/build");
    group.sample_size(10);
    group.bench_function("ours", |b| b.iter(|| black_box(O200kBase::new())));
    group.bench_function("tiktoken-rs", |b| {
        b.iter(|| black_box(tiktoken_rs::o200k_base().expect("o200k_base builds")))
    });
    group.finish();
}

fn count(c: &mut Criterion) {
    let text = english();
    let ours = O200kBase::new();
    let theirs = tiktoken_rs::o200k_base().expect("o200k_base builds");
    assert_eq!(ours.count(&text), theirs.encode_ordinary(&text).len());
    let mut group = c.benchmark_group("tokenizer/count_4kb_english");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("ours", |b| b.iter(|| ours.count(black_box(&text))));
    group.bench_function("tiktoken-rs", |b| {
        b.iter(|| theirs.encode_ordinary(black_box(&text)).len())
    });
    group.finish();
}

fn benches() {
    let mut criterion = Criterion::default().configure_from_args();
    build(&mut criterion);
    count(&mut criterion);
}

criterion_main!(benches);
