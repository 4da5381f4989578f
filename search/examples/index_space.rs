//! Prints where a shard index's bytes go, per field and component (term dictionary, postings,
//! positions): `cargo run --release -p arca-search --example index_space -- <data>/shards/<id>/index`.

use std::collections::BTreeMap;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: index_space <index directory>")?;
    let index = arca_search::ShardIndex::open_or_create_in_dir(std::path::Path::new(&dir))?;
    let usage = index.reader().searcher().space_usage()?;
    let mut per_field: BTreeMap<String, [u64; 3]> = BTreeMap::new();
    for segment in usage.segments() {
        let parts = [segment.termdict(), segment.postings(), segment.positions()];
        for (i, part) in parts.into_iter().enumerate() {
            for f in part.fields() {
                per_field.entry(f.field_name().to_string()).or_default()[i] += f.total().get_bytes();
            }
        }
    }
    let mut rows: Vec<_> = per_field.into_iter().collect();
    rows.sort_by_key(|(_, v)| std::cmp::Reverse(v.iter().sum::<u64>()));
    println!("{:<24} {:>12} {:>12} {:>12}", "field", "terms", "postings", "positions");
    for (name, [t, p, pos]) in rows {
        println!("{name:<24} {t:>12} {p:>12} {pos:>12}");
    }
    println!("total {} bytes in {} segments", usage.total().get_bytes(), usage.segments().len());
    Ok(())
}
