//! Load generator (placeholder until it lands).

#[derive(clap::Args, Debug)]
pub struct LoadgenArgs {}

pub async fn run(_args: LoadgenArgs) -> anyhow::Result<()> {
    anyhow::bail!("the load generator is not built yet")
}
