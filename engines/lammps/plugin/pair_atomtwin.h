// pair_style atomtwin: atomtwin potentials (AOTInductor packages) in LAMMPS.
// GPL-2.0 (see LICENSE in this folder).
#ifndef LMP_PAIR_ATOMTWIN_H
#define LMP_PAIR_ATOMTWIN_H

#include "pair.h"

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace torch::inductor {
class AOTIModelPackageLoader;
}

namespace LAMMPS_NS {

class PairAtomtwin : public Pair {
 public:
  PairAtomtwin(class LAMMPS *);
  ~PairAtomtwin() override;
  void compute(int, int) override;
  void settings(int, char **) override;
  void coeff(int, char **) override;
  void init_style() override;
  double init_one(int, int) override;
  double memory_usage() override;

 protected:
  void allocate();
  void check_units();

  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loader;
  std::string package;
  std::vector<std::string> species;
  std::vector<int> type_map;    // LAMMPS type -> species index, -1 for NULL
  double r_max = 0.0, ghost_cut = 0.0;
  int num_layers = 1;
  bool message_passing = false, single_precision = false, on_cuda = false;
  std::string architecture;
  int nthreads = 1;
  bool timing = false;    // pair_style atomtwin timing yes: per-rank breakdown at the end
  long calls = 0;
  double t_graph = 0.0, t_model = 0.0, t_tally = 0.0;
  long long sum_nodes = 0, sum_local = 0, sum_edges_first = 0, sum_edges_last = 0;

  // buffers reused between steps (capacity kept)
  std::vector<double> vec;          // (E,3)
  std::vector<int64_t> index;       // (2,E): centres then neighbours
  std::vector<int> centre, neigh;   // LAMMPS indices of each edge's ends
  std::vector<int64_t> types;       // (N,) per graph node
  std::vector<double> weight;       // (N,) per graph node
  std::vector<int> node_of;         // LAMMPS index (local or ghost) -> graph node
  std::vector<int> rep;             // ghost index -> the copy of its atom that is a centre
  std::vector<double> depth;        // ghost index -> distance outside this rank's sub-domain
  std::vector<int> hop;             // node -> edges (r < r_max) from the nearest local atom
  std::unordered_map<long long, int> by_tag;    // atom ID -> local index, or nearest ghost copy
};

}    // namespace LAMMPS_NS

#endif
