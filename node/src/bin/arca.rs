//! `arca`: the Arca server (`arca serve`) and its command-line client.

use arca_node::{client, cluster_cmd, data_cmd, export_cmd, serve, store_cmd, tenant_cmd};

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use arca_types::config::{Config, EXAMPLE};

/// Arca, a distributed e-mail archive.
#[derive(Debug, Parser)]
#[command(name = "arca", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Top,
}

#[derive(Debug, Subcommand)]
enum Top {
    /// Start a node (a new single-node cluster on first start, or a member joining one).
    Serve {
        /// Configuration file (TOML); every setting can also be set as ARCA_<SECTION>_<KEY>.
        #[arg(long, env = "ARCA_CONFIG")]
        config: Option<PathBuf>,
        /// Cluster address (host:8460) of any member, to join its cluster when the data directory is new.
        #[arg(long)]
        join: Option<String>,
    },
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        command: ConfigCmd,
    },
    /// Membership of the metadata cluster.
    Cluster {
        #[command(flatten)]
        client: client::ClientOptions,
        #[command(subcommand)]
        command: cluster_cmd::ClusterCmd,
    },
    /// Archive stores (shards): list, verify, rebuild-index, move, rebalance (`arca store` is the same command).
    #[command(visible_alias = "store")]
    Shard {
        #[command(flatten)]
        client: client::ClientOptions,
        #[command(subcommand)]
        command: store_cmd::StoreCmd,
    },
    /// Tenants (cluster operators only): create, list, show, disable, enable, delete.
    Tenant {
        #[command(flatten)]
        client: client::ClientOptions,
        #[command(subcommand)]
        command: tenant_cmd::TenantCmd,
    },
    /// Write the messages a search finds as EML files or MBOX, with X-Arca-* lines for re-import.
    Export {
        #[command(flatten)]
        client: client::ClientOptions,
        #[command(flatten)]
        args: export_cmd::ExportArgs,
    },
    /// Archive messages from EML directories, MBOX files or Maildir trees into a user's archive
    /// (`--reimport`: an Arca export back into its archives and folders).
    Import {
        #[command(flatten)]
        client: client::ClientOptions,
        #[command(flatten)]
        args: data_cmd::ImportArgs,
    },
    /// Search every archive the user may read (quick-search syntax).
    Search {
        #[command(flatten)]
        client: client::ClientOptions,
        #[command(flatten)]
        args: data_cmd::SearchArgs,
    },
    /// Print one message (`--raw`: the exact original bytes).
    Fetch {
        #[command(flatten)]
        client: client::ClientOptions,
        #[command(flatten)]
        args: data_cmd::FetchArgs,
    },
    /// Nodes of the cluster (`node remove` is `cluster remove`).
    Node {
        #[command(flatten)]
        client: client::ClientOptions,
        #[command(subcommand)]
        command: cluster_cmd::NodeCmd,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCmd {
    /// Print the documented configuration file with every default.
    Example,
    /// Print the effective configuration (file plus environment).
    Show {
        #[arg(long, env = "ARCA_CONFIG")]
        config: Option<PathBuf>,
    },
}

fn load_config(file: Option<&PathBuf>) -> Result<Config> {
    Ok(Config::load(file.map(|p| p.as_path()), std::env::vars())?)
}

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(run(cli)) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command {
        Top::Serve { config, join } => {
            let config = load_config(config.as_ref())?;
            arca_node::logging::init(&config.log)?;
            serve::run(config, join).await
        }
        Top::Config { command: ConfigCmd::Example } => {
            print!("{EXAMPLE}");
            Ok(())
        }
        Top::Config { command: ConfigCmd::Show { config } } => {
            let config = load_config(config.as_ref())?;
            print!("{}", toml::to_string(&config).context("cannot print the configuration")?);
            Ok(())
        }
        Top::Cluster { client, command } => cluster_cmd::run(&client, command).await,
        Top::Node { client, command } => cluster_cmd::run_node(&client, command).await,
        Top::Import { client, args } => data_cmd::import(&client, args).await,
        Top::Export { client, args } => export_cmd::export(&client, args).await,
        Top::Shard { client, command } => {
            if store_cmd::run(&client, command).await? {
                Ok(())
            } else {
                anyhow::bail!("damage found: the affected messages are listed above")
            }
        }
        Top::Search { client, args } => data_cmd::search(&client, args).await,
        Top::Tenant { client, command } => tenant_cmd::run(&client, command).await,
        Top::Fetch { client, args } => data_cmd::fetch(&client, args).await,
    }
}
