//! Finpay simulator (placeholder until it lands).

#[derive(clap::Args, Debug)]
pub struct SimulatorArgs {}

pub async fn run(_args: SimulatorArgs) -> anyhow::Result<()> {
    anyhow::bail!("the simulator is not built yet")
}
