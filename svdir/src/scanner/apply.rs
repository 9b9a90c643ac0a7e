//! Applying a scan: each service directory found gets its runsv (started, adopted, or
//! queued behind the old runsv of its name), each one gone has its runsv told to exit,
//! renames and aliases change nothing but names, and skipped entries are reported once.

use super::{lossy, report_once, Id, Runsv, Service, Svdir};
use crate::scan::{self, Scan};
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};

impl Svdir {
    pub(super) fn rescan(&mut self, initial: bool) {
        self.need_scan = false;
        if self.stop.is_some() {
            return;
        }
        let scan = match scan::scan(&self.resolution.dir) {
            Ok(scan) => scan,
            Err(error) => {
                let dir = &self.resolution.dir;
                report_once(&mut self.scan_problem, crate::describe(&error), |problem| {
                    say!("warning: unable to read {}: {problem}", dir.display())
                });
                return;
            }
        };
        self.scan_problem = None;
        let Scan { entries, skipped } = scan;
        let mut aliases: Vec<(OsString, OsString)> = Vec::new();
        // Entries gone: their runsv is told to exit.
        let removed: Vec<Id> = self
            .services
            .iter()
            .filter(|(id, s)| s.present && !entries.contains_key(id))
            .map(|(id, _)| *id)
            .collect();
        for id in removed {
            if let Some(service) = self.services.get_mut(&id) {
                service.present = false;
                say!("{}: removed: telling its runsv to exit", service.label());
            }
            self.tell_exit(id);
        }
        self.sys.begin_batch();
        for (id, entry) in entries {
            let home_of = |name: &OsStr| self.resolution.dir.join(name);
            let chosen = match self.services.get(&id) {
                Some(service) if entry.names.contains(&service.name) => service.name.clone(),
                _ => entry.names.first().cloned().unwrap_or_default(),
            };
            for name in &entry.names {
                if *name != chosen {
                    aliases.push((name.clone(), chosen.clone()));
                }
            }
            match self.services.get_mut(&id) {
                Some(service) => {
                    let name = chosen;
                    if service.present && name != service.name {
                        say!("{}: renamed to {}", service.label(), lossy(&name));
                    }
                    service.home = home_of(&name);
                    service.name = name;
                    service.names = entry.names;
                    service.target = entry.target;
                    if !service.present {
                        service.present = true;
                        if matches!(service.runsv, Runsv::None) {
                            // Told to exit and already gone: a new start.
                            self.runsv_left(id);
                        } else {
                            say!(
                                "{}: back: a new runsv starts once the old one has exited",
                                service.label()
                            );
                        }
                    }
                }
                None => {
                    let name = chosen;
                    let home = home_of(&name);
                    self.services.insert(
                        id,
                        Service {
                            names: entry.names,
                            target: entry.target,
                            ..Service::new(name, home)
                        },
                    );
                    self.start_runsv(id);
                    if !initial {
                        if let Some(service) = self.services.get(&id) {
                            let how = match service.runsv {
                                Runsv::Adopted(_) => "adopted its running runsv",
                                Runsv::Queued => {
                                    "starts once the old runsv of this name has exited"
                                }
                                _ => "runsv started",
                            };
                            say!("{}: new: {how}", service.label());
                        }
                    }
                }
            }
        }
        self.sys.end_batch();
        self.report_skipped(skipped, aliases);
    }

    /// Reports each skipped entry once (again only if its reason changes).
    fn report_skipped(
        &mut self,
        mut now: BTreeMap<OsString, String>,
        aliases: Vec<(OsString, OsString)>,
    ) {
        for (alias, name) in aliases {
            now.insert(alias, format!("same service directory as {}", lossy(&name)));
        }
        for (name, why) in &now {
            if self.skipped.get(name) != Some(why) {
                say!("{}: skipped: {why}", lossy(name));
            }
        }
        self.skipped = now;
    }
}
