// Owns discovery: paged reads of the estate (ListVpcPeerConnections, ListTagResources) for one policy and region.
// Must not match, plan or write anything: it yields candidate resources; policy/ and planner/ decide.
export { discover, discoverPages, resumable, type DiscoveryCursor, type DiscoveryPage, type PageRetry } from './discover.js';
