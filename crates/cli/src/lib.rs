//! The `mirage` command: wires the workspace, the plan, the connectors and the transform into
//! jobs. See the README for the commands and the workspace file.

pub mod check;
pub mod demo;
pub mod init;
pub mod plan;
pub mod policy;
pub mod progress;
pub mod report;
pub mod run;

#[cfg(test)]
mod tests {
    /// The README's generator reference is the registry's own output, so the two cannot drift.
    #[test]
    fn readme_generator_reference_is_current() {
        let readme = include_str!("../../../README.md");
        let begin = "<!-- generators:begin -->\n";
        let start = readme
            .find(begin)
            .expect("README has the generators:begin marker")
            + begin.len();
        let end = readme
            .find("<!-- generators:end -->")
            .expect("README has the generators:end marker");
        assert_eq!(
            &readme[start..end],
            mirage_generators::reference_markdown(),
            "run `mirage generators --markdown` and paste the table between the markers in README.md"
        );
    }
}
