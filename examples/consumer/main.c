/* storefront -- the smallest program using libleadscore: sends a visitor's
 * add_to_cart and prints the score reply, every field ls_score holds.
 *
 *     storefront [ENDPOINT] [CUSTOMER]     (tcp://127.0.0.1:5555, visitor-1) */
#include <leadscore/client.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    const char *endpoint = argc > 1 ? argv[1] : "tcp://127.0.0.1:5555";
    const char *customer = argc > 2 ? argv[2] : "visitor-1";
    ls_client *c;
    int rc = ls_client_connect(&c, endpoint, 5000);
    if (rc != LS_OK) {
        fprintf(stderr, "storefront: cannot connect to %s: %s\n", endpoint, ls_strerror(rc));
        return 1;
    }
    ls_client_event ev = {.customer = customer, .type = "add_to_cart", .category = "shoes/running",
                          .price = 89.90, .has = LS_HAS_PRICE};
    ls_track_result tr;
    ls_score s;
    if ((rc = ls_client_track(c, &ev, 1, &tr)) != LS_OK || (rc = ls_client_score(c, customer, &s)) != LS_OK) {
        fprintf(stderr, "storefront: %s: %s\n", ls_strerror(rc), ls_client_last_error(c));
        ls_client_close(&c);
        return 1;
    }
    printf("tracked %u event(s)\n", tr.accepted);
    printf("customer %s known=%d score=%.4f score_100=%d tier=%s model=%s\n", s.customer, s.known, s.score,
           s.score_100, s.tier, s.model);
    printf("p_alive=%.3f expected_purchases_30d=%.3f clv=%.2f\n", s.p_alive, s.expected_purchases_30d, s.clv);
    printf("customer_type=%s phase=%s loyalty=%lld points (%s)\n", s.customer_type, s.phase,
           (long long)s.loyalty_points, s.loyalty_tier);
    for (size_t i = 0; i < s.n_actions; i++)
        printf("action %s\n", s.actions[i]);
    for (size_t i = 0; i < s.n_segments; i++)
        printf("segment %s weight=%.2f: %s\n", s.segments[i].segment, s.segments[i].weight, s.segments[i].reason);
    ls_score_free(&s);
    ls_client_close(&c);
    return 0;
}
