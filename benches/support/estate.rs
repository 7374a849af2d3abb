//! A deterministic synthetic estate for benchmarks: about 100,000 CIs of the usual classes in
//! layers (switches and storage, hypervisor hosts, VMs, databases, applications, business
//! applications), about three relationships per CI, and a few hundred services. The same
//! seed always gives the same estate.
//!
//! Popularity is skewed, as in real estates: a few hosts carry many VMs and a few databases
//! serve many applications, so blast radii range from a handful of CIs to thousands.

#![allow(dead_code)]

use serde_json::{Value, json};

/// SplitMix64: small, fast and good enough to shape test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize
    }

    /// Skewed towards 0: low indexes are picked far more often.
    pub fn skewed(&mut self, n: usize, power: f64) -> usize {
        ((self.unit().powf(power)) * n as f64) as usize
    }
}

/// One CI of the estate; `key` is its index, also its external id.
#[derive(Debug, Clone)]
pub struct EstateCi {
    pub key: usize,
    pub class: &'static str,
    pub name: String,
    pub attributes: Value,
}

/// One relationship between two CIs, by key.
#[derive(Debug, Clone, Copy)]
pub struct EstateRelationship {
    pub source: usize,
    pub target: usize,
    pub kind: &'static str,
}

/// One service and its members, by key.
#[derive(Debug, Clone)]
pub struct EstateService {
    pub name: String,
    pub members: Vec<usize>,
}

/// The whole estate.
pub struct Estate {
    pub cis: Vec<EstateCi>,
    pub relationships: Vec<EstateRelationship>,
    pub services: Vec<EstateService>,
    /// Keys of the hypervisor hosts, the usual starting points of impact analysis.
    pub servers: Vec<usize>,
}

struct Layer {
    start: usize,
    len: usize,
}

impl Layer {
    fn key(&self, i: usize) -> usize {
        self.start + i
    }
}

/// Builds the estate with `total` CIs (100,000 for the benchmarks).
pub fn generate(total: usize, seed: u64) -> Estate {
    let mut rng = Rng::new(seed);
    let mut cis = Vec::with_capacity(total);
    let mut relationships = Vec::with_capacity(total * 3);
    let scale = |fraction: f64| ((total as f64 * fraction) as usize).max(1);

    let layer = |cis: &mut Vec<EstateCi>,
                 class: &'static str,
                 prefix: &str,
                 count: usize,
                 rng: &mut Rng| {
        let start = cis.len();
        for i in 0..count {
            let key = start + i;
            let attributes = match class {
                "network_switch" | "storage" => {
                    json!({ "serial_number": format!("SN-{key:07}"), "model": "generic" })
                }
                "server" => json!({
                    "serial_number": format!("SN-{key:07}"),
                    "fqdn": format!("{prefix}-{i:05}.dc.example.com"),
                    "cpu_count": 32 + 16 * (i % 4),
                    "memory_gb": 256.0,
                }),
                "virtual_machine" => json!({
                    "vm_uuid": format!("vm-{key:08}"),
                    "fqdn": format!("{prefix}-{i:05}.vm.example.com"),
                    "cpu_count": 2 + 2 * (i % 4),
                    "memory_gb": 8.0,
                    "os": if i % 3 == 0 { "windows" } else { "linux" },
                }),
                "database" => {
                    json!({ "engine": if i % 2 == 0 { "postgresql" } else { "mysql" }, "port": 5432 })
                }
                "application" => {
                    json!({ "version": format!("{}.{}.0", 1 + rng.below(5), rng.below(20)) })
                }
                _ => json!({ "business_owner": format!("owner-{}", i % 97) }),
            };
            cis.push(EstateCi {
                key,
                class,
                name: format!("{prefix}-{i:05}"),
                attributes,
            });
        }
        Layer { start, len: count }
    };

    let switches = layer(&mut cis, "network_switch", "sw", scale(0.001), &mut rng);
    let storage = layer(&mut cis, "storage", "san", scale(0.0005), &mut rng);
    let servers = layer(&mut cis, "server", "esx", scale(0.02), &mut rng);
    let vms = layer(&mut cis, "virtual_machine", "vm", scale(0.40), &mut rng);
    let databases = layer(&mut cis, "database", "db", scale(0.08), &mut rng);
    let applications = layer(&mut cis, "application", "app", scale(0.45), &mut rng);
    let remaining = total.saturating_sub(cis.len()).max(1);
    let business = layer(&mut cis, "business_application", "biz", remaining, &mut rng);

    let mut relate = |source: usize, kind: &'static str, target: usize| {
        relationships.push(EstateRelationship {
            source,
            target,
            kind,
        });
    };
    for i in 0..servers.len {
        let server = servers.key(i);
        let first = rng.below(switches.len);
        relate(server, "connected_to", switches.key(first));
        relate(
            server,
            "connected_to",
            switches.key((first + 1) % switches.len),
        );
        relate(server, "uses", storage.key(rng.below(storage.len)));
    }
    for i in 0..vms.len {
        let vm = vms.key(i);
        relate(vm, "hosted_on", servers.key(rng.skewed(servers.len, 1.6)));
        relate(vm, "connected_to", switches.key(rng.below(switches.len)));
    }
    for i in 0..databases.len {
        let db = databases.key(i);
        relate(db, "runs_on", vms.key(rng.below(vms.len)));
        relate(db, "backed_up_by", storage.key(rng.below(storage.len)));
        if i > 0 && i % 2 == 0 {
            relate(db, "replicates_to", databases.key(i - 1));
        }
    }
    for i in 0..applications.len {
        let app = applications.key(i);
        relate(app, "runs_on", vms.key(rng.below(vms.len)));
        relate(
            app,
            "depends_on",
            databases.key(rng.skewed(databases.len, 1.3)),
        );
        if rng.unit() < 0.5 {
            relate(app, "depends_on", databases.key(rng.below(databases.len)));
        }
        if i > 0 && rng.unit() < 0.3 {
            // Layered: an application only depends on applications listed before it.
            relate(app, "depends_on", applications.key(rng.below(i)));
        }
        relate(app, "backed_up_by", storage.key(rng.below(storage.len)));
    }
    for i in 0..business.len {
        let biz = business.key(i);
        let mut seen = Vec::new();
        for _ in 0..4 {
            let app = rng.below(applications.len);
            if !seen.contains(&app) {
                seen.push(app);
                relate(biz, "depends_on", applications.key(app));
            }
        }
    }
    // Keep one relationship per (source, target, type).
    relationships.sort_by_key(|r| (r.source, r.target, r.kind));
    relationships.dedup_by_key(|r| (r.source, r.target, r.kind));

    let service_count = (total / 330).max(3);
    let services = (0..service_count)
        .map(|i| {
            let mut members = vec![business.key(i % business.len)];
            for _ in 0..8 {
                members.push(applications.key(rng.below(applications.len)));
            }
            members.push(databases.key(rng.below(databases.len)));
            members.sort();
            members.dedup();
            EstateService {
                name: format!("service-{i:03}"),
                members,
            }
        })
        .collect();
    let servers = (0..servers.len).map(|i| servers.key(i)).collect();
    Estate {
        cis,
        relationships,
        services,
        servers,
    }
}
