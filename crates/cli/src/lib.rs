//! The `mirage` command: argument parsing, rendering of the engine's events and reports, and
//! the `demo`, `init` and `policy` front ends. The jobs themselves run in `mirage-engine`.

pub mod check;
pub mod demo;
pub mod init;
pub mod policy;
pub mod render;
pub mod scan;

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

    /// The README's complete annotated workspace.toml is a valid workspace, [staging] included.
    #[test]
    fn readme_workspace_example_parses() {
        let readme = include_str!("../../../README.md");
        let section = &readme[readme.find("## The workspace file").expect("section")..];
        let start = section.find("```toml\n").expect("a toml block") + "```toml\n".len();
        let text = &section[start..start + section[start..].find("```").expect("block end")];
        let ws = mirage_core::Workspace::parse("README.md".as_ref(), text)
            .unwrap_or_else(|e| panic!("the README's workspace.toml: {e}"));
        let staging = ws.staging.expect("[staging] is documented");
        assert_eq!(staging.copy_batch.0, 48 << 20);
        assert!(ws.tables.len() >= 4);
    }
}
