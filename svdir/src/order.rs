//! The order of the stop: dependents before their dependencies. Service `s` depends on
//! `d` when `d` is in `s`'s `after` list; `d` is told to stop only once every service
//! depending on it has had its runsv exit. Services with no relation stop in parallel.
//!
//! A dependency cycle must not hang the stop: the services of a cycle (a strongly
//! connected component of the graph) stop together, once every service outside the
//! cycle that depends on one of them is gone; the order between cycles, and around
//! them, is kept.

#[derive(Debug)]
pub struct Plan {
    /// For each service, the services that depend on it.
    dependents: Vec<Vec<usize>>,
    /// The component (cycle, or single service) of each service.
    component: Vec<usize>,
    /// The members of each component.
    members: Vec<Vec<usize>>,
    told: Vec<bool>,
    gone: Vec<bool>,
}

impl Plan {
    /// `edges`: (dependent, dependency) pairs among services `0..count`; self-edges
    /// and duplicates are harmless.
    pub fn new(count: usize, edges: &[(usize, usize)]) -> Plan {
        let mut dependents = vec![Vec::new(); count];
        let mut dependencies = vec![Vec::new(); count];
        for &(dependent, dependency) in edges {
            if dependent == dependency || dependent >= count || dependency >= count {
                continue;
            }
            if let Some(list) = dependents.get_mut(dependency) {
                if !list.contains(&dependent) {
                    list.push(dependent);
                }
            }
            if let Some(list) = dependencies.get_mut(dependent) {
                list.push(dependency);
            }
        }
        let component = components(&dependencies);
        let mut members = vec![Vec::new(); component.iter().max().map_or(0, |m| m + 1)];
        for (service, &c) in component.iter().enumerate() {
            if let Some(list) = members.get_mut(c) {
                list.push(service);
            }
        }
        Plan {
            dependents,
            component,
            members,
            told: vec![false; count],
            gone: vec![false; count],
        }
    }

    /// The cycles of the graph (components of more than one service), for messages.
    pub fn cycles(&self) -> Vec<Vec<usize>> {
        self.members
            .iter()
            .filter(|m| m.len() > 1)
            .cloned()
            .collect()
    }

    /// The runsv of `service` has exited (or it had none).
    pub fn mark_gone(&mut self, service: usize) {
        if let Some(gone) = self.gone.get_mut(service) {
            *gone = true;
        }
        if let Some(told) = self.told.get_mut(service) {
            *told = true;
        }
    }

    pub fn is_gone(&self, service: usize) -> bool {
        self.gone.get(service).copied().unwrap_or(true)
    }

    /// Every runsv has exited.
    pub fn done(&self) -> bool {
        self.gone.iter().all(|&g| g)
    }

    /// The services to tell to stop now: those not yet told whose component has no
    /// dependent outside it still running. Marks them told.
    pub fn next(&mut self) -> Vec<usize> {
        let mut ready = Vec::new();
        for members in &self.members {
            if members
                .iter()
                .all(|&s| self.told.get(s).copied().unwrap_or(true))
            {
                continue;
            }
            let blocked = members.iter().any(|&s| {
                self.dependents.get(s).is_some_and(|dependents| {
                    dependents.iter().any(|&d| {
                        self.component.get(d) != self.component.get(s)
                            && !self.gone.get(d).copied().unwrap_or(true)
                    })
                })
            });
            if !blocked {
                ready.extend(
                    members
                        .iter()
                        .copied()
                        .filter(|&s| !self.told.get(s).copied().unwrap_or(true)),
                );
            }
        }
        for &s in &ready {
            if let Some(told) = self.told.get_mut(s) {
                *told = true;
            }
        }
        ready.sort_unstable();
        ready
    }
}

/// Tarjan's strongly connected components, iteratively (no recursion depth to worry
/// about): the component number of each node.
fn components(edges: &[Vec<usize>]) -> Vec<usize> {
    let count = edges.len();
    const UNSEEN: usize = usize::MAX;
    let mut index = vec![UNSEEN; count];
    let mut low = vec![0; count];
    let mut on_stack = vec![false; count];
    let mut stack = Vec::new();
    let mut component = vec![UNSEEN; count];
    let mut next_index = 0;
    let mut next_component = 0;
    for root in 0..count {
        if index.get(root) != Some(&UNSEEN) {
            continue;
        }
        // (node, position in its edge list)
        let mut work: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(&mut (node, ref mut position)) = work.last_mut() {
            if *position == 0 && index.get(node) == Some(&UNSEEN) {
                if let (Some(i), Some(l), Some(o)) = (
                    index.get_mut(node),
                    low.get_mut(node),
                    on_stack.get_mut(node),
                ) {
                    *i = next_index;
                    *l = next_index;
                    *o = true;
                }
                next_index += 1;
                stack.push(node);
            }
            let successors = edges.get(node).map(Vec::as_slice).unwrap_or_default();
            if let Some(&next) = successors.get(*position) {
                *position += 1;
                if index.get(next) == Some(&UNSEEN) {
                    work.push((next, 0));
                } else if on_stack.get(next) == Some(&true) {
                    let candidate = index.get(next).copied().unwrap_or(UNSEEN);
                    if let Some(l) = low.get_mut(node) {
                        *l = (*l).min(candidate);
                    }
                }
                continue;
            }
            work.pop();
            let node_low = low.get(node).copied().unwrap_or(0);
            if let Some(&(parent, _)) = work.last() {
                if let Some(l) = low.get_mut(parent) {
                    *l = (*l).min(node_low);
                }
            }
            if index.get(node) == Some(&node_low) {
                while let Some(member) = stack.pop() {
                    if let Some(flag) = on_stack.get_mut(member) {
                        *flag = false;
                    }
                    if let Some(c) = component.get_mut(member) {
                        *c = next_component;
                    }
                    if member == node {
                        break;
                    }
                }
                next_component += 1;
            }
        }
    }
    component
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_stops_from_the_top() {
        // b after a, c after b: c, then b, then a.
        let mut plan = Plan::new(3, &[(1, 0), (2, 1)]);
        assert!(plan.cycles().is_empty());
        assert_eq!(plan.next(), [2]);
        assert_eq!(plan.next(), Vec::<usize>::new());
        plan.mark_gone(2);
        assert_eq!(plan.next(), [1]);
        plan.mark_gone(1);
        assert_eq!(plan.next(), [0]);
        assert!(!plan.done());
        plan.mark_gone(0);
        assert!(plan.done());
    }

    #[test]
    fn unrelated_services_stop_in_parallel() {
        let mut plan = Plan::new(4, &[(1, 0), (1, 2)]);
        assert_eq!(plan.next(), [1, 3]);
        plan.mark_gone(3);
        assert!(plan.next().is_empty());
        plan.mark_gone(1);
        assert_eq!(plan.next(), [0, 2]);
    }

    #[test]
    fn a_cycle_stops_together_after_its_dependents_and_before_its_dependencies() {
        // 0 <-> 1 is a cycle; 2 after 0 (a dependent); 0 after 3 (a dependency).
        let mut plan = Plan::new(4, &[(0, 1), (1, 0), (2, 0), (0, 3)]);
        assert_eq!(plan.cycles(), vec![vec![0, 1]]);
        assert_eq!(plan.next(), [2]);
        plan.mark_gone(2);
        assert_eq!(plan.next(), [0, 1]);
        plan.mark_gone(1);
        // 3's only dependent (0) is still running.
        assert!(plan.next().is_empty());
        plan.mark_gone(0);
        assert_eq!(plan.next(), [3]);
    }

    #[test]
    fn a_service_gone_before_the_stop_blocks_nothing() {
        let mut plan = Plan::new(2, &[(1, 0), (1, 1), (1, 0)]);
        plan.mark_gone(1);
        assert_eq!(plan.next(), [0]);
    }

    #[test]
    fn a_long_chain_and_a_big_cycle() {
        let n = 5000;
        let chain: Vec<(usize, usize)> = (1..n).map(|i| (i, i - 1)).collect();
        let mut plan = Plan::new(n, &chain);
        for expected in (0..n).rev() {
            assert_eq!(plan.next(), [expected]);
            plan.mark_gone(expected);
        }
        assert!(plan.done());
        let mut ring = chain.clone();
        ring.push((0, n - 1));
        let mut plan = Plan::new(n, &ring);
        assert_eq!(plan.next().len(), n);
    }
}
