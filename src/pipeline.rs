//! What a vLLM job runs, read from its Buildkite `command`. Pure.
//!
//! vLLM's generated job scripts `cd` into `/vllm-workspace` or `/vllm-workspace/tests`, then run
//! each command as `(pytest -v -s <paths> …) || CI_OVERALL_STATUS=1` or `python3 <script>`. The
//! paths are relative to that directory; here they become repository paths (`tests/…`).

/// One thing a job runs: a pytest target (file or directory) or a Python script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Repository-relative, `::test` selectors removed.
    pub path: String,
    pub is_pytest: bool,
}

/// Everything the command runs, in order.
pub fn targets(command: &str) -> Vec<Target> {
    let mut directory = String::new();
    let mut found = Vec::new();
    // An `echo "…"` whose quote closes on a later line: its text is not a command.
    let mut in_echo = false;
    for line in command.lines() {
        let line = line.trim().trim_start_matches('(');
        if in_echo {
            in_echo = line.matches('"').count() % 2 == 0;
            continue;
        }
        if line.starts_with("echo ") {
            in_echo = line.matches('"').count() % 2 == 1;
            continue;
        }
        if let Some(target) = line.strip_prefix("cd ") {
            directory = target
                .trim()
                .trim_start_matches("/vllm-workspace")
                .trim_matches('/')
                .to_string();
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(runner) = words
            .iter()
            .position(|w| matches!(*w, "pytest" | "python3" | "python"))
        else {
            continue;
        };
        let is_pytest = words[runner] == "pytest";
        let mut previous_was_option_with_value = false;
        for word in &words[runner + 1..] {
            let word = word.trim_end_matches(')').trim_matches(['"', '\'']);
            if word.starts_with('-') {
                // `-m 'marker expr'`, `-k expr`, `--ignore=…`: the next word is the option's.
                previous_was_option_with_value =
                    matches!(word, "-m" | "-k" | "-c" | "-p" | "--deselect");
                continue;
            }
            if std::mem::take(&mut previous_was_option_with_value)
                || word.contains('=')
                || word == "||"
            {
                continue;
            }
            if !(word.ends_with(".py") || word.contains(".py::") || word.contains('/')) {
                continue;
            }
            let file = word
                .split("::")
                .next()
                .unwrap_or(word)
                .trim_end_matches('/');
            let path = if directory.is_empty() {
                file.to_string()
            } else {
                format!("{directory}/{file}")
            };
            found.push(Target { path, is_pytest });
            if !is_pytest {
                break;
            }
        }
    }
    found
}

/// How many commands vLLM's generated job script runs: the `N` of its
/// `echo "+++ :test_tube: Command (i/N): …"` lines; `None` for a command without them.
pub fn command_count(command: &str) -> Option<u32> {
    command.lines().find_map(|line| {
        let rest = &line[line.find("Command (")? + "Command (".len()..];
        let (_, total) = rest[..rest.find(')')?].split_once('/')?;
        total.trim().parse().ok()
    })
}

/// The file a job works on when its log names no test: its first target.
pub fn test_area(command: &str) -> Option<String> {
    targets(command).into_iter().next().map(|t| t.path)
}

/// Whether the job's pytest targets include `repo_path` (a test file, `tests/…`): the file
/// itself or a directory above it.
pub fn runs_test_file(command: &str, repo_path: &str) -> bool {
    targets(command).iter().filter(|t| t.is_pytest).any(|t| {
        repo_path == t.path
            || repo_path
                .strip_prefix(t.path.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_count_from_the_generated_script() {
        let command = "echo \"+++ :test_tube: Command (1/6): pytest -v -s a\"\npytest -v -s a\necho \"+++ :test_tube: Command (2/6): pytest b\"";
        assert_eq!(command_count(command), Some(6));
        assert_eq!(command_count("pytest -v -s tests/a.py"), None);
    }

    fn command(name: &str) -> String {
        let build: crate::buildkite::Build =
            serde_json::from_str(crate::fixtures::BUILD_65099).expect("fixture");
        build
            .jobs()
            .iter()
            .find(|j| j.display_name() == name)
            .and_then(|j| j.command.clone())
            .unwrap_or_default()
    }

    #[test]
    fn real_commands() {
        let distributed = command("Distributed Tests (2 GPUs)(H100)");
        assert_eq!(
            test_area(&distributed).as_deref(),
            Some("tests/distributed/test_context_parallel.py")
        );
        assert!(runs_test_file(
            &distributed,
            "tests/v1/distributed/test_dbo.py"
        ));
        assert!(!runs_test_file(
            &distributed,
            "tests/v1/distributed/test_dbo_other.py"
        ));
        let scheduling = command("e2e Scheduling (1 GPU)");
        assert!(runs_test_file(
            &scheduling,
            "tests/v1/e2e/general/test_async_scheduling.py"
        ));
        let compat = command("Transformers Backward Compatibility Models Test");
        assert!(
            runs_test_file(&compat, "tests/models/multimodal/processing/test_llava.py"),
            "directory target"
        );
        assert!(
            !runs_test_file(&compat, "examples/basic/offline_inference/chat.py"),
            "scripts are not pytest targets"
        );
    }

    #[test]
    fn echo_text_across_lines_is_not_a_command() {
        let build: crate::buildkite::Build = serde_json::from_str(include_str!(
            "../wiremock-fixtures/builds/65099_compact.json"
        ))
        .expect("fixture");
        let cpu = build
            .jobs()
            .iter()
            .find(|j| j.display_name() == "CPU-Multi-Modal Model Tests 1")
            .and_then(|j| j.command.clone())
            .unwrap_or_default();
        let paths: Vec<String> = targets(&cpu).into_iter().map(|t| t.path).collect();
        assert_eq!(
            paths,
            vec!["tests/models/multimodal/generation"],
            "not the echoed `tests/`"
        );
    }

    #[test]
    fn options_and_selectors() {
        let cmd = "cd /vllm-workspace/tests\n(pytest -v -s -m 'not core_model' models/language --ignore=models/language/x.py) || CI_OVERALL_STATUS=1\n(pytest -v -s kernels/test_a.py::test_b) || CI_OVERALL_STATUS=1";
        let paths: Vec<String> = targets(cmd).into_iter().map(|t| t.path).collect();
        assert_eq!(
            paths,
            vec!["tests/models/language", "tests/kernels/test_a.py"]
        );
        assert_eq!(test_area("echo hi\nls"), None);
    }
}
