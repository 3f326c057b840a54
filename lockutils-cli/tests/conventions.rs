//! What scripts built on flock(1) and etcdctl expect of `lockutils hold`:
//! `-n -E 0` skips a busy lock quietly, the held command learns which lock it
//! holds, messages stay one line whatever a holder's command line holds, and
//! `list` and `clean` agree on what a lock file is.

use std::ffi::OsStr;
use std::path::Path;

use lockutils_core::LockOptions;

mod common;
use common::*;

/// `lockutils hold --lock-path DIR ARGS...`.
fn hold<'a>(dir: &'a Path, args: &[&'a str]) -> std::process::Output {
    let mut all: Vec<&OsStr> = vec!["hold".as_ref(), "--lock-path".as_ref(), dir.as_ref()];
    all.extend(args.iter().map(OsStr::new));
    lockutils(all)
}

#[test]
fn no_wait_with_exit_code_0_skips_a_busy_lock_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let _held = LockOptions::new("nightly")
        .external(true)
        .lock_path(tmp.path())
        .lock()
        .unwrap();
    let out = hold(tmp.path(), &["-n", "-E", "0", "nightly", "--", "false"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "skip-if-busy says nothing");
    // Any other code still explains itself.
    let out = hold(tmp.path(), &["-n", "-E", "3", "nightly", "--", "false"]);
    assert_eq!(code(&out), 3);
    assert!(stderr(&out).contains("\"nightly\""), "{}", stderr(&out));
}

#[test]
fn the_held_command_learns_its_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let script = "printf '%s|%s|%s|%s\\n' \"$LOCKUTILS_LOCK_NAME\" \"$LOCKUTILS_LOCK_FILE\" \
                  \"$LOCKUTILS_LOCK_MODE\" \"${LOCKUTILS_FENCING_TOKEN-unset}\"";
    let path = tmp.path().join("nova-instance-1");
    let out = hold(
        tmp.path(),
        &["--prefix", "nova", "instance-1", "--", "sh", "-c", script],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim_end(),
        format!("instance-1|{}|exclusive|unset", path.display()),
        "file locks have no fencing token"
    );
    let out = hold(
        tmp.path(),
        &["--shared", "readers", "--", "sh", "-c", script],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("|shared|"), "{}", stdout(&out));
}

/// `LOCKUTILS_LOCK_PATH` is the lock directory for the library and the
/// command: under `hold` it names the directory `hold` used, and the lock
/// file has a variable of its own, so lockutils inside CMD works.
#[test]
fn lockutils_inside_the_held_command_uses_the_lock_directory_of_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let script = "printf '%s\\n' \"$LOCKUTILS_LOCK_FILE\" \"$LOCKUTILS_LOCK_PATH\"; \
                  \"$0\" hold inner -- touch \"$LOCKUTILS_LOCK_PATH/inner-ran\" || exit 11; \
                  \"$0\" list --json > \"$LOCKUTILS_LOCK_PATH/.listed\" || exit 12; \
                  \"$0\" remove inner || exit 13";
    let out = hold(
        tmp.path(),
        &[
            "outer",
            "--",
            "sh",
            "-c",
            script,
            env!("CARGO_BIN_EXE_lockutils"),
        ],
    );
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(&*tmp.path().join("outer").to_string_lossy())
    );
    assert_eq!(lines.next(), Some(&*tmp.path().to_string_lossy()));
    assert!(tmp.path().join("inner-ran").exists(), "nested hold ran CMD");
    assert!(
        !tmp.path().join("inner").exists(),
        "remove removed it: {text}"
    );
    let listed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join(".listed")).unwrap()).unwrap();
    let outer = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "outer")
        .unwrap_or_else(|| panic!("outer not listed: {listed}"));
    assert_eq!(outer["state"], "held_exclusive", "{listed}");
}

#[test]
fn a_holder_command_line_with_newlines_stays_on_one_line() {
    use std::os::unix::process::CommandExt;
    let tmp = tempfile::tempdir().unwrap();
    let ready = tmp.path().join("ready");
    // The holder's command line starts with a newline-bearing argv[0].
    let mut holder = std::process::Command::new(env!("CARGO_BIN_EXE_lockutils"))
        .arg0("first line\nsecond line")
        .arg("hold")
        .arg("--lock-path")
        .arg(tmp.path())
        .args([
            "multi",
            "--",
            "sh",
            "-c",
            "touch \"$1\"; exec sleep 30",
            "sh",
        ])
        .arg(&ready)
        .spawn()
        .unwrap();
    wait_for("the holder", || ready.exists().then_some(()));
    let out = hold(tmp.path(), &["-n", "multi", "--", "true"]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(code(&out), 75, "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("(first line\\nsecond line hold"),
        "newline escaped: {err}"
    );
}

#[test]
fn list_and_clean_agree_on_what_a_lock_file_is() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("readme.txt"), b"not empty").unwrap();
    drop(
        LockOptions::new("real")
            .external(true)
            .lock_path(dir)
            .lock()
            .unwrap(),
    );
    let d = dir.to_str().unwrap();
    let out = lockutils(["list", "--lock-path", d, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let names: Vec<String> = json(&out)
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["real"], "list shows only lock files");
    let out = lockutils(["list", "--lock-path", d]);
    assert!(
        stderr(&out).contains("1 other file(s)") && !stdout(&out).contains("readme.txt"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let out = lockutils(["clean", "--lock-path", d, "--dry-run"]);
    let text = stdout(&out);
    let readme = text
        .lines()
        .find(|l| l.contains("readme.txt"))
        .unwrap_or_default();
    assert!(readme.contains("not a lock file"), "{text}");
    let real = text
        .lines()
        .find(|l| l.contains("real"))
        .unwrap_or_default();
    assert!(!real.contains("not a lock file"), "{text}");
}

/// `--shared` with the Curator layout is a usage error found in the URL:
/// exit 2 at once, even with no server listening.
#[cfg(feature = "zookeeper")]
#[test]
fn shared_with_the_curator_layout_is_a_usage_error_without_a_server() {
    // A port nothing listens on: the error must come before any connection.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("zookeeper://127.0.0.1:{port}/t?layout=curator");
    let out = lockutils(["hold", "--backend", &url, "--shared", "x", "--", "true"]);
    // Not 1 (the connection error after connect_timeout): a usage error.
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("layout=curator"), "{}", stderr(&out));
}

#[test]
fn completions_for_each_shell_come_from_the_clap_definitions() {
    for (shell, marker) in [
        ("bash", "_lockutils()"),
        ("zsh", "#compdef lockutils"),
        ("fish", "complete -c lockutils"),
    ] {
        let out = lockutils(["completions", shell]);
        assert_eq!(code(&out), 0, "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        assert!(script.contains(marker), "{shell}: {script}");
        for sub in ["hold", "list", "clean", "conflict-exit-code"] {
            assert!(script.contains(sub), "{shell} misses {sub}");
        }
    }
    let out = lockutils(["completions", "tcsh"]);
    assert_eq!(code(&out), 2, "an unknown shell is a usage error");
}

#[test]
fn the_man_page_comes_from_the_clap_definitions() {
    let out = lockutils(["man"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let page = stdout(&out);
    assert!(
        page.starts_with(".ie") || page.contains(".TH lockutils"),
        "{page}"
    );
    for part in [
        ".SH NAME",
        ".SH SYNOPSIS",
        "hold",
        "completions",
        "\\-\\-color",
    ] {
        assert!(page.contains(part), "man page misses {part}");
    }
}

#[test]
fn verbose_and_rust_log_show_the_library_events() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    let quiet = lockutils_env(
        ["hold", "--lock-path", d, "v", "--", "true"],
        &[("RUST_LOG", "")],
    );
    assert_eq!(code(&quiet), 0, "{}", stderr(&quiet));
    assert!(
        !stderr(&quiet).contains("lock acquired"),
        "{}",
        stderr(&quiet)
    );
    let verbose = lockutils_env(
        ["-v", "hold", "--lock-path", d, "v", "--", "true"],
        &[("RUST_LOG", "")],
    );
    assert_eq!(code(&verbose), 0, "{}", stderr(&verbose));
    let err = stderr(&verbose);
    assert!(
        err.contains("DEBUG") && err.contains("lock acquired"),
        "{err}"
    );
    let env = lockutils_env(
        ["hold", "--lock-path", d, "v", "--", "true"],
        &[("RUST_LOG", "lockutils=debug")],
    );
    assert!(stderr(&env).contains("lock acquired"), "{}", stderr(&env));
}

#[test]
fn color_follows_the_flag_and_clicolor_force() {
    let tmp = tempfile::tempdir().unwrap();
    drop(
        LockOptions::new("c")
            .external(true)
            .lock_path(tmp.path())
            .lock()
            .unwrap(),
    );
    let d = tmp.path().to_str().unwrap();
    let has_sgr = |out: &std::process::Output| stdout(out).contains("\x1b[");
    // Output is a pipe here: no colour unless asked.
    let unforced = [("CLICOLOR_FORCE", ""), ("NO_COLOR", "")];
    assert!(!has_sgr(&lockutils_env(
        ["list", "--lock-path", d],
        &unforced
    )));
    assert!(has_sgr(&lockutils_env(
        ["--color", "always", "list", "--lock-path", d],
        &unforced
    )));
    assert!(has_sgr(&lockutils_env(
        ["list", "--lock-path", d],
        &[("CLICOLOR_FORCE", "1")]
    )));
    assert!(!has_sgr(&lockutils_env(
        ["--color", "never", "list", "--lock-path", d],
        &[("CLICOLOR_FORCE", "1")]
    )));
}

/// `hold --file-mode` creates the lock file with those bits (filtered by the
/// umask, as any new file); a bad mode, or one for a backend without lock
/// directories, is a usage error.
#[test]
fn file_mode_sets_the_mode_of_a_new_lock_file() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    for (umask, asked, got) in [
        ("022", "0644", 0o644),
        ("002", "0664", 0o664),
        ("027", "0664", 0o640),
    ] {
        let name = format!("mode-{asked}-{umask}");
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("umask {umask}; exec \"$0\" \"$@\"")])
            .arg(env!("CARGO_BIN_EXE_lockutils"))
            .args([
                "hold",
                "--lock-path",
                d,
                "--file-mode",
                asked,
                &name,
                "--",
                "true",
            ])
            .output()
            .unwrap();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let mode = std::fs::metadata(tmp.path().join(&name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, got, "{asked} under umask {umask}");
    }
    for bad in ["0x644", "999", "0444", "rw-r--r--", "17777"] {
        let out = hold(tmp.path(), &["--file-mode", bad, "x", "--", "true"]);
        assert_eq!(code(&out), 2, "{bad}: {}", stderr(&out));
        assert!(stderr(&out).contains("--file-mode"), "{}", stderr(&out));
    }
    let url = format!("file://{d}");
    let out = lockutils([
        "hold",
        "--backend",
        &url,
        "--file-mode",
        "0644",
        "x",
        "true",
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("?file_mode="), "{}", stderr(&out));
    assert!(!tmp.path().join("x").exists(), "nothing created");
}
