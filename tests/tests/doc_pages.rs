//! Every page of docs/ has its Rust snippets run somewhere: as a page of
//! this crate's `docs` doctests, or included whole by the crate it
//! documents. A new page that is in neither list fails here.

use std::fs;
use std::path::Path;

/// Pages whose snippets this crate runs (`page!` in src/lib.rs).
const HERE: &[&str] = &[
    "guide",
    "macros",
    "expansion",
    "design",
    "cli",
    "performance",
    "dependencies",
    "reliability",
    "zookeeper",
];

/// Pages included whole as doctests by a crate (`#[doc = include_str!]`),
/// with the file that includes them.
const ELSEWHERE: &[(&str, &str)] = &[
    ("backends", "lockutils/src/lib.rs"),
    ("postgresql", "lockutils/src/lib.rs"),
];

#[test]
fn every_docs_page_has_its_snippets_tested() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let lib = fs::read_to_string(root.join("tests/src/lib.rs")).unwrap();
    for entry in fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let page = path.file_stem().unwrap().to_str().unwrap().to_owned();
        if HERE.contains(&page.as_str()) {
            assert!(
                lib.contains(&format!("\"{page}\"")),
                "docs/{page}.md is listed here but not as a page! in tests/src/lib.rs"
            );
            continue;
        }
        let Some((_, file)) = ELSEWHERE.iter().find(|(p, _)| *p == page) else {
            panic!(
                "docs/{page}.md: its Rust snippets are run nowhere; add it with page! in \
                 tests/src/lib.rs (and to HERE in this test)"
            );
        };
        let includer = fs::read_to_string(root.join(file)).unwrap();
        assert!(
            includer.contains(&format!("docs/{page}.md")),
            "docs/{page}.md is said to be included by {file}, which does not include it"
        );
    }
}
