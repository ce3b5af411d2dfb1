#include "runtime/admin_client.h"

#include <cassert>

namespace sluice::runtime {

AdminClient::Result<std::unique_ptr<AdminClient>> connect_admin_client(Env& env,
                                                                       const Address& address,
                                                                       Duration timeout) {
  assert(timeout.count() > 0);
  return AdminClient::connect(
      env, address,
      client::ConnectionOptions{
          .client_id = "sluice-admin", .connect_timeout = timeout, .request_timeout = timeout});
}

}  // namespace sluice::runtime
