package phoenix

import (
	"context"
	"net"
)

// SetNetDial makes c reach its server through dial instead of the network,
// so that a test can run client and server over net.Pipe inside a synctest
// bubble, where real sockets would keep the fake clock from advancing. Call
// it before Start.
func SetNetDial(c *Client, dial func(ctx context.Context, network, addr string) (net.Conn, error)) {
	c.dialer.NetDialContext = dial
	c.dialer.Proxy = nil
}

// Busiest is busiest, for the fleet test of the external test package.
var Busiest = busiest
