package pod

// SetCopyRoots makes the pods in user namespaces that m creates from now
// on run on copies of their images, as on a host without ID-mapped
// mounts.
func (m *Manager) SetCopyRoots(on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.copyRoots = on
}
