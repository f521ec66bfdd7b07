//! The `townstat` binary: parses arguments and hands over to the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    townstat_cli::main()
}
