//! CPU lists from sysfs ("0-3,5,7-8").

use std::fs;

use anyhow::{Context, Result, bail};

/// CPU numbers from a sysfs list ("0-3,5"); None if it is not one.
pub fn parse_list(text: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b): (u32, u32) = match part.split_once('-') {
            Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            None => {
                let a = part.parse().ok()?;
                (a, a)
            }
        };
        if a > b || b >= 1 << 16 {
            return None;
        }
        cpus.extend(a..=b);
    }
    Some(cpus)
}

fn read(path: &str) -> Result<Vec<u32>> {
    let text = fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
    match parse_list(&text) {
        Some(cpus) if !cpus.is_empty() => Ok(cpus),
        _ => bail!("{path} holds no CPU list: {text:?}"),
    }
}

/// The CPUs that can run now: one ring each.
pub fn online() -> Result<Vec<u32>> {
    read("/sys/devices/system/cpu/online")
}

/// How many CPU ids can ever exist: the size of the per-CPU maps.
pub fn possible_count() -> Result<u32> {
    Ok(read("/sys/devices/system/cpu/possible")?
        .into_iter()
        .max()
        .unwrap_or(0)
        + 1)
}
