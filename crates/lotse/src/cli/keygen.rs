//! `lotse keygen`: a new gossip encryption key (32 random bytes, base64), as `consul keygen`.

use std::io::Write;

use base64::Engine;

pub const SYNOPSIS: &str = "Generates a new encryption key";

pub fn help() -> String {
    "Usage: lotse keygen\n\n  Generates a new 32-byte encryption key for -encrypt (gossip) and prints it,\n  base64-encoded, on stdout."
        .into()
}

pub fn run(args: &[String]) -> i32 {
    if !args.is_empty() {
        eprintln!("Error: the keygen command takes no arguments\n\n{}", help());
        return 1;
    }
    let mut key = [0u8; 32];
    if let Err(e) = rand::RngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut key) {
        eprintln!("Error reading random data: {e}");
        return 1;
    }
    let text = base64::engine::general_purpose::STANDARD.encode(key);
    let _ = writeln!(std::io::stdout(), "{text}");
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_32_random_bytes() {
        assert_eq!(run(&[]), 0);
        assert_eq!(run(&["x".into()]), 1);
    }
}
