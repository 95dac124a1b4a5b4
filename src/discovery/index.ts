// Owns discovery: paged reads of the estate (ListVpcPeerConnections, ListTagResources) for one policy and region.
// Must not match, plan or write anything: it yields candidate resources; policy/ and planner/ decide.
export { discover, resumable, type PageRetry } from './discover.js';
