//! `corsgate completions SHELL` and `corsgate manpage`.

use super::{corsgate, stdout_of};

const SUBCOMMANDS: [&str; 7] = [
    "run",
    "check",
    "explain",
    "demo",
    "schema",
    "completions",
    "manpage",
];

#[test]
fn each_of_the_five_shells_gets_completions_naming_every_subcommand() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let text = stdout_of(&["completions", shell]);
        assert!(text.len() > 200, "{shell}: {} bytes", text.len());
        assert!(text.contains("corsgate"), "{shell}: no command name");
        for sub in SUBCOMMANDS {
            assert!(text.contains(sub), "{shell} completions miss {sub:?}");
        }
        // fish spells long flags `-l config`, the others `--config`.
        for flag in ["config", "origin", "preflight"] {
            assert!(text.contains(flag), "{shell} completions miss --{flag}");
        }
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error_listing_the_choices() {
    let out = corsgate(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("powershell"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn manpage_prints_roff_for_corsgate_and_its_subcommands() {
    let text = stdout_of(&["manpage"]);
    assert!(
        text.starts_with(".TH") || text.starts_with(".ie"),
        "not roff: {:?}",
        &text[..text.len().min(80)]
    );
    assert!(text.contains(".TH corsgate 1"), "no title header");
    assert!(text.contains(".SH NAME") && text.contains(".SH SYNOPSIS"));
    assert!(
        text.contains("CORSGATE_CONFIG"),
        "the --config env default is documented"
    );
    assert!(
        text.contains(".SS \"corsgate explain\"") && text.contains("\\-\\-origin"),
        "explain's options are on the page"
    );
    for sub in SUBCOMMANDS {
        assert!(
            text.contains(&format!("corsgate\\-{sub}")),
            "man page misses {sub}"
        );
    }
}

#[test]
fn shell_integration_script_installs_every_file_where_shells_and_man_look() {
    let prefix = tempfile::tempdir().expect("tempdir");
    let status = std::process::Command::new("bash")
        .arg(super::repo("deploy/shell-integration.sh"))
        .arg(env!("CARGO_BIN_EXE_corsgate"))
        .arg(prefix.path())
        .status()
        .expect("run bash");
    assert!(status.success());
    for (file, marker) in [
        ("share/bash-completion/completions/corsgate", "complete"),
        ("share/zsh/site-functions/_corsgate", "#compdef corsgate"),
        (
            "share/fish/vendor_completions.d/corsgate.fish",
            "complete -c corsgate",
        ),
        ("share/corsgate/completions/corsgate.elv", "edit:completion"),
        (
            "share/corsgate/completions/corsgate.ps1",
            "Register-ArgumentCompleter",
        ),
        ("share/man/man1/corsgate.1", ".TH corsgate 1"),
    ] {
        let text = std::fs::read_to_string(prefix.path().join(file)).expect(file);
        assert!(text.contains(marker), "{file} lacks {marker:?}");
    }
}

#[test]
fn the_image_build_context_holds_the_script_its_build_stage_runs() {
    let dockerfile = std::fs::read_to_string(super::repo("Dockerfile")).expect("Dockerfile");
    let ignore = std::fs::read_to_string(super::repo(".dockerignore")).expect(".dockerignore");
    assert!(dockerfile.contains("deploy/shell-integration.sh"));
    assert!(
        ignore.lines().any(|l| l == "!deploy/shell-integration.sh"),
        ".dockerignore is an allowlist: the build stage cannot see deploy/shell-integration.sh"
    );
}
