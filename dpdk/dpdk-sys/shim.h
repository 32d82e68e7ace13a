/*
 * Exported wrappers for DPDK's static inline functions, which bindgen cannot link to.
 * Each wrapper is a one-line forward; names carry the `shim_` prefix.
 */
#ifndef LB_DPDK_SHIM_H
#define LB_DPDK_SHIM_H

#include <stdint.h>
#include <rte_mbuf.h>
#include <rte_ethdev.h>
#include <rte_ring.h>

uint16_t shim_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t shim_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
struct rte_mbuf *shim_pktmbuf_alloc(struct rte_mempool *mp);
int shim_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int n);
void shim_pktmbuf_free(struct rte_mbuf *m);
void shim_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned int n);
uint8_t *shim_pktmbuf_mtod(struct rte_mbuf *m);
uint16_t shim_pktmbuf_data_len(const struct rte_mbuf *m);
uint32_t shim_pktmbuf_pkt_len(const struct rte_mbuf *m);
uint16_t shim_pktmbuf_nb_segs(const struct rte_mbuf *m);
uint16_t shim_pktmbuf_headroom(const struct rte_mbuf *m);
char *shim_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *shim_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
char *shim_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
int shim_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
int shim_pktmbuf_linearize(struct rte_mbuf *m);
uint32_t shim_pktmbuf_rss_hash(const struct rte_mbuf *m);
uint64_t shim_pktmbuf_ol_flags(const struct rte_mbuf *m);
uint16_t shim_pktmbuf_port(const struct rte_mbuf *m);
struct rte_mempool *shim_pktmbuf_pool(const struct rte_mbuf *m);
unsigned int shim_lcore_id(void);
int shim_errno(void);
uint64_t shim_get_tsc_cycles(void);
void shim_pause(void);
unsigned int shim_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned int n);
unsigned int shim_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned int n);
unsigned int shim_ring_count(const struct rte_ring *r);

#endif
