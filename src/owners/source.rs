//! Pure helpers for owner lookup: where a failing test lives in the repository and which lines
//! are its function.

pub use crate::input::repo_path_candidates;

/// The 1-based inclusive line range of `def <function>` (or `async def`) in Python `source`:
/// from its decorators to the last line indented under it. With `class_name`, the function
/// inside that class is preferred.
pub fn function_line_range(
    source: &str,
    class_name: Option<&str>,
    function: &str,
) -> Option<(u32, u32)> {
    let lines: Vec<&str> = source.lines().collect();
    let indent = |line: &str| line.len() - line.trim_start().len();
    let is_def = |line: &str| {
        let t = line.trim_start();
        let t = t.strip_prefix("async ").unwrap_or(t);
        t.strip_prefix("def ").is_some_and(|rest| {
            rest.starts_with(function) && rest[function.len()..].trim_start().starts_with('(')
        })
    };
    let class_start = class_name.and_then(|class| {
        lines.iter().position(|l| {
            let t = l.trim_start();
            t.strip_prefix("class ").is_some_and(|rest| {
                rest.starts_with(class)
                    && !rest[class.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
            })
        })
    });
    let def_index = match class_start {
        Some(start) => lines
            .iter()
            .enumerate()
            .skip(start)
            .find(|(_, l)| is_def(l))
            .map(|(i, _)| i),
        None => None,
    }
    .or_else(|| lines.iter().position(|l| is_def(l)))?;
    let def_indent = indent(lines[def_index]);
    let mut start = def_index;
    while start > 0
        && lines[start - 1].trim_start().starts_with('@')
        && indent(lines[start - 1]) == def_indent
    {
        start -= 1;
    }
    let mut end = def_index;
    for (i, line) in lines.iter().enumerate().skip(def_index + 1) {
        if line.trim().is_empty() {
            continue;
        }
        if indent(line) <= def_indent {
            break;
        }
        end = i;
    }
    Some((start as u32 + 1, end as u32 + 1))
}

/// `path::Class::test_x[params]` → (path, Some("Class"), "test_x").
pub fn split_node_id(node_id: &str) -> Option<(&str, Option<&str>, &str)> {
    let (file, rest) = node_id.split_once("::")?;
    let rest = rest.split('[').next().unwrap_or(rest);
    match rest.rsplit_once("::") {
        Some((class, function)) => Some((
            file,
            Some(class.rsplit("::").next().unwrap_or(class)),
            function,
        )),
        None => Some((file, None, rest)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_from_node_ids() {
        assert_eq!(
            repo_path_candidates("v1/engine/test_x.py"),
            vec!["tests/v1/engine/test_x.py", "v1/engine/test_x.py"]
        );
        assert_eq!(
            repo_path_candidates("tests/v1/engine/test_x.py"),
            vec!["tests/v1/engine/test_x.py"]
        );
        assert_eq!(
            repo_path_candidates("/vllm-workspace/tests/a/test_b.py"),
            vec!["tests/a/test_b.py"]
        );
    }

    #[test]
    fn function_ranges() {
        let source = "import x\n\n@pytest.mark.parametrize('a', [1])\ndef test_a(a):\n    assert a\n\n    return\n\ndef test_b():\n    pass\n\nclass TestC:\n    def test_a(self):\n        pass\n";
        assert_eq!(function_line_range(source, None, "test_a"), Some((3, 7)));
        assert_eq!(function_line_range(source, None, "test_b"), Some((9, 10)));
        assert_eq!(
            function_line_range(source, Some("TestC"), "test_a"),
            Some((13, 14))
        );
        assert_eq!(function_line_range(source, None, "test_missing"), None);
        assert_eq!(
            split_node_id("a/test_b.py::TestC::test_a[x-y]"),
            Some(("a/test_b.py", Some("TestC"), "test_a"))
        );
    }
}
