//! `breakwater`: parse the command line, load the configuration, set up logging, dispatch.

use std::process::ExitCode;

use breakwater::cli::Cli;
use breakwater::commands::{self, EXIT_USAGE};
use breakwater::config::Config;
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_process_env_in(&cli.env_dir, &cli.overrides()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("breakwater: invalid configuration:\n{err}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Err(err) = commands::init_tracing(&config.log) {
        eprintln!("breakwater: {err:#}");
    }
    commands::run(cli.command, config)
}
