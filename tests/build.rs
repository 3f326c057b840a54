//! Collects the Rust snippets of README.md and docs/*.md for this crate's
//! doctests (see `docs` in src/lib.rs).
//!
//! rustdoc would read a whole page as Rust wherever markdown has a code
//! block without a language, indented shell commands included; the pages use
//! those for commands and output. So each page is reduced to its fenced
//! ```` ```rust ```` blocks (attributes such as `no_run` kept), each preceded
//! by the page and line it comes from, which a failing doctest prints.
//!
//! What a snippet needs but a reader need not see (a stub type, a `fn
//! main`) goes in an HTML comment right before it, invisible where the page
//! is rendered:
//!
//! A snippet that needs the `zookeeper` feature says so with
//! `<!-- doctest(zookeeper): ...`; it runs only when the feature is on.
//!
//! ```text
//! <!-- doctest: hidden lines of the next snippet
//! struct Instance;
//! impl Instance {
//! {snippet}
//! }
//! -->
//! ```
//!
//! (`{snippet}` marks where the snippet goes when lines must follow it.)

use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

fn main() {
    let root = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap()).join("..");
    let out = Path::new(&env::var("OUT_DIR").unwrap()).join("doc-snippets");
    fs::create_dir_all(&out).unwrap();
    let mut pages = vec![root.join("README.md")];
    let mut docs: Vec<_> = fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    println!("cargo::rerun-if-changed={}", root.join("docs").display());
    for page in &pages {
        println!("cargo::rerun-if-changed={}", page.display());
        let text = fs::read_to_string(page).unwrap();
        let shown = page.strip_prefix(&root).unwrap().display().to_string();
        let name = page.file_name().unwrap().to_string_lossy().to_lowercase();
        let (plain, zookeeper) = rust_blocks(&text, &shown);
        fs::write(out.join(&name), plain).unwrap();
        fs::write(out.join(name.replace(".md", "-zookeeper.md")), zookeeper).unwrap();
    }
}

/// Ends a snippet. One that uses `?` outside a `fn main` is read as the
/// body of a function returning a `Result`, as a reader would paste it into
/// one: rustdoc does so when the last line is an `Ok::<(), E>(())`, added
/// here hidden rather than shown on every page.
fn close_snippet(out: &mut String, snippet: &str) {
    out.push_str(snippet);
    if snippet.contains('?') && !snippet.contains("fn main") {
        out.push_str("# Ok::<(), Box<dyn std::error::Error>>(())\n");
    }
    out.push_str("```\n\n");
}

/// The page's fenced Rust blocks, each under a line naming where it is:
/// those that need the `zookeeper` feature (marked `<!-- doctest(zookeeper)`)
/// apart from the others.
fn rust_blocks(text: &str, page: &str) -> (String, String) {
    let mut plain = String::new();
    let mut zookeeper = String::new();
    let mut needs_zookeeper = false;
    let mut in_rust = false;
    let mut in_other = false;
    let mut snippet = String::new();
    // Lines of a `<!-- doctest ... -->` comment, for the next snippet.
    let mut context: Option<String> = None;
    let mut in_context = false;
    // Hidden lines after the snippet (those after `{snippet}` in its context).
    let mut closing = String::new();
    for (i, line) in text.lines().enumerate() {
        if in_context {
            if line.trim() == "-->" {
                in_context = false;
            } else if let Some(c) = context.as_mut() {
                let _ = writeln!(c, "# {line}");
            }
            continue;
        }
        if !in_rust && !in_other && line.trim_start().starts_with("<!-- doctest") {
            in_context = true;
            needs_zookeeper = line.contains("doctest(zookeeper)");
            context = Some(String::new());
            continue;
        }
        let fence = line.trim_start().strip_prefix("```");
        let out = if needs_zookeeper {
            &mut zookeeper
        } else {
            &mut plain
        };
        match fence {
            Some(_) if in_rust || in_other => {
                if in_rust {
                    snippet.push_str(&closing);
                    close_snippet(out, &snippet);
                    snippet.clear();
                    needs_zookeeper = false;
                }
                in_rust = false;
                in_other = false;
            }
            Some(info) => {
                let lang = info.split(',').next().unwrap_or("").trim();
                if lang.is_empty() || lang == "rust" {
                    in_rust = true;
                    let _ = writeln!(out, "{page} line {}:\n", i + 1);
                    let _ = writeln!(out, "```{}", info.trim());
                    let context = context.take().unwrap_or_default();
                    let (before, after) = context
                        .split_once("# {snippet}\n")
                        .unwrap_or((&context, ""));
                    out.push_str(before);
                    closing = after.to_owned();
                } else {
                    in_other = true;
                }
            }
            None if in_rust => {
                snippet.push_str(line);
                snippet.push('\n');
            }
            None => {}
        }
    }
    assert!(
        !in_rust && !in_other && !in_context,
        "{page}: unclosed code fence"
    );
    (plain, zookeeper)
}
