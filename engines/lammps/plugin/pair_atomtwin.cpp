// pair_style atomtwin: atomtwin potentials (AOTInductor packages) in LAMMPS.
// GPL-2.0 (see LICENSE in this folder).
//
//   plugin load /path/to/atomtwin_lammps.so       (printed by `atomtwin lammps build`)
//   pair_style atomtwin [threads N] [timing yes]
//   (timing yes: each rank prints, at the end, its seconds per call in graph building, the
//   package and the force tally, and its mean node and edge counts)
//   pair_coeff * * model.pt2 Cu Ni NULL ...        (one species name, or NULL, per atom type)
//
// Each step: a full neighbour list (newton on) over local atoms -- and over ghost atoms too for
// a message-passing (NequIP-style) model, whose ghost shell must reach num_layers * r_max --
// gives the edges i -> j with r_ij < r_max between graph nodes, one node per atom (periodic
// images of a local atom are that atom; copies of an atom owned by another rank share a
// node), so one rank evaluates exactly our engine's periodic graph; the package (see
// engines/lammps/export.py)
// returns per-atom energies and g_e = dE/d(x_j - x_i), E being the energy of the local atoms.
// Forces f_i += g, f_j -= g on local and ghost atoms (ghost forces are reverse-communicated
// by LAMMPS, newton on); virial W = -sum_e vec_e (x) g_e, per-atom virial half to each end.

#include "pair_atomtwin.h"

#include "atom.h"
#include "comm.h"
#include "domain.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "update.h"

#include <ATen/Parallel.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

using namespace LAMMPS_NS;

static const char *FORMAT = "atomtwin-lammps-aoti/2";
static const char *FIX_COMPILE = "atomtwin compile CHECKPOINT OUT.pt2 --target lammps";

PairAtomtwin::PairAtomtwin(LAMMPS *lmp) : Pair(lmp)
{
  single_enable = 0;
  restartinfo = 0;
  one_coeff = 1;
  manybody_flag = 1;
  no_virial_fdotr_compute = 1;    // virial tallied per edge (also gives the per-atom virial)
  centroidstressflag = 0;         // CENTROID_SAME: the per-edge split is a two-body split
  ghostneigh = 0;
}

PairAtomtwin::~PairAtomtwin()
{
  if (timing && calls > 0)    // one line per rank, at the end of the run
    fprintf(stderr,
            "pair_style atomtwin timing, rank %d: %ld calls; per call: graph %.4f s, package "
            "%.4f s, forces %.4f s; nodes %.0f (local %.0f), edges %.0f (first layer) %.0f "
            "(last layer)\n",
            comm->me, calls, t_graph / calls, t_model / calls, t_tally / calls,
            (double) sum_nodes / calls, (double) sum_local / calls, (double) sum_edges_first / calls,
            (double) sum_edges_last / calls);
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
    memory->destroy(cutghost);
  }
}

void PairAtomtwin::allocate()
{
  allocated = 1;
  int n = atom->ntypes + 1;
  memory->create(setflag, n, n, "pair:setflag");
  memory->create(cutsq, n, n, "pair:cutsq");
  memory->create(cutghost, n, n, "pair:cutghost");
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) setflag[i][j] = 0;
}

void PairAtomtwin::settings(int narg, char **arg)
{
  int iarg = 0;
  while (iarg < narg) {
    if (strcmp(arg[iarg], "threads") == 0 && iarg + 1 < narg) {
      nthreads = std::atoi(arg[iarg + 1]);
      if (nthreads < 1) error->all(FLERR, "pair_style atomtwin: threads must be >= 1");
      iarg += 2;
    } else if (strcmp(arg[iarg], "timing") == 0 && iarg + 1 < narg) {
      timing = strcmp(arg[iarg + 1], "yes") == 0;
      iarg += 2;
    } else {
      error->all(FLERR,
                 std::string("pair_style atomtwin: unknown argument '") + arg[iarg] +
                     "'. Fix: pair_style atomtwin [threads N] [timing yes]");
    }
  }
}

void PairAtomtwin::check_units()
{
  if (strcmp(update->unit_style, "metal") != 0)
    error->all(FLERR,
               std::string("pair_style atomtwin needs 'units metal' (eV, Angstrom, ps), this input "
                           "has 'units ") +
                   update->unit_style + "'. Fix: put 'units metal' before read_data.");
}

static std::vector<std::string> split(const std::string &s)
{
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

void PairAtomtwin::coeff(int narg, char **arg)
{
  if (!allocated) allocate();
  int ntypes = atom->ntypes;
  if (narg != 3 + ntypes)
    error->all(FLERR,
               "pair_coeff for atomtwin: expected '* * model.pt2' and one species name (or NULL) "
               "per atom type ({} types), got {} arguments",
               ntypes, narg);
  if (strcmp(arg[0], "*") != 0 || strcmp(arg[1], "*") != 0)
    error->all(FLERR, "pair_coeff for atomtwin must be 'pair_coeff * * model.pt2 SPECIES...'");
  check_units();

  package = arg[2];
  {
    std::ifstream probe(package);
    if (!probe.good())
      error->all(FLERR, "pair_coeff atomtwin: package '" + package + "' cannot be read. Fix: " +
                            FIX_COMPILE);
  }
  std::unordered_map<std::string, std::string> meta;
  try {
    meta = torch::inductor::AOTIModelPackageLoader::load_metadata_from_package(package, "model");
  } catch (const std::exception &e) {
    error->all(FLERR, "pair_coeff atomtwin: '" + package + "' is not an AOTInductor package (" +
                          e.what() + "). Fix: " + FIX_COMPILE);
  }
  auto get = [&](const char *key) -> std::string {
    auto it = meta.find(std::string("atomtwin.") + key);
    return it == meta.end() ? std::string() : it->second;
  };
  if (get("format") != FORMAT) {
    std::string what = meta.count("atomtwin") ? "a package for atomtwin's Python engine"
                                              : "not an atomtwin package";
    error->all(FLERR, "pair_coeff atomtwin: '" + package + "' is " + what +
                          ", not one for LAMMPS. Fix: " + FIX_COMPILE);
  }
  if (get("torch_version") != ATOMTWIN_TORCH_VERSION)
    error->all(FLERR, "pair_coeff atomtwin: '" + package + "' was compiled with torch " +
                          get("torch_version") + ", this plugin runs torch " +
                          ATOMTWIN_TORCH_VERSION + ". Fix: recompile the package with this torch (" +
                          FIX_COMPILE + ") or rebuild the plugin (atomtwin lammps build)");
  std::string device = get("device");
  on_cuda = device == "cuda";
  if (device != "cpu" && !(on_cuda && torch::cuda::is_available()))
    error->all(FLERR, "pair_coeff atomtwin: '" + package + "' was compiled for device '" + device +
                          "', which this process does not have. Fix: compile it where LAMMPS "
                          "runs: " + FIX_COMPILE + " --device cpu");
  if (get("units") != "metal")
    error->all(FLERR, "pair_coeff atomtwin: '" + package + "' declares units '" + get("units") +
                          "'; this plugin runs 'metal'. Fix: " + FIX_COMPILE);
  species = split(get("species"));
  r_max = std::stod(get("r_max"));
  ghost_cut = std::stod(get("ghost_cutoff"));
  num_layers = std::stoi(get("num_layers"));
  architecture = get("architecture");
  message_passing = architecture == "nequip" && num_layers > 1;
  single_precision = get("dtype") == "float32";

  type_map.assign(ntypes + 1, -1);
  std::string known;
  for (auto &s : species) known += (known.empty() ? "" : " ") + s;
  for (int t = 1; t <= ntypes; t++) {
    std::string name = arg[2 + t];
    if (name == "NULL") continue;
    int k = -1;
    for (size_t s = 0; s < species.size(); s++)
      if (species[s] == name) k = (int) s;
    if (k < 0)
      error->all(FLERR, "pair_coeff atomtwin: species '" + name + "' (atom type " +
                            std::to_string(t) + ") is unknown to the model, which knows: " + known +
                            ". Fix: name one of these for each type (NULL for none), or use a "
                            "model trained on " + name);
    type_map[t] = k;
  }
  for (int i = 1; i <= ntypes; i++)
    for (int j = i; j <= ntypes; j++) setflag[i][j] = (type_map[i] >= 0 && type_map[j] >= 0);

  try {
    loader = std::make_unique<torch::inductor::AOTIModelPackageLoader>(
        package, "model", false, 1, on_cuda ? 0 : -1);
  } catch (const std::exception &e) {
    error->all(FLERR, "pair_coeff atomtwin: loading '" + package + "' failed: " + e.what() +
                          ". Fix: recompile it on this machine: " + FIX_COMPILE);
  }
  ghostneigh = message_passing ? 1 : 0;
}

void PairAtomtwin::init_style()
{
  if (!loader) error->all(FLERR, "pair_style atomtwin: no package loaded. Fix: pair_coeff * * model.pt2 SPECIES...");
  check_units();
  if (force->newton_pair == 0)
    error->all(FLERR,
               "pair_style atomtwin needs newton pair on (forces on ghost atoms are "
               "reverse-communicated). Fix: 'newton on' (the default) before read_data");
  if (atom->tag_enable == 0) error->all(FLERR, "pair_style atomtwin needs atom IDs");
  if (message_passing) {
    double need = ghost_cut + neighbor->skin;
    double have = std::max(comm->cutghostuser, r_max + neighbor->skin);
    if (have < need)
      error->all(FLERR,
                 "pair_style atomtwin: the message-passing model ({} layers x r_max {} A) needs "
                 "ghost atoms up to {} A (+ skin {} A) = {} A, but the communication cutoff is "
                 "{} A. Fix: comm_modify cutoff {}",
                 num_layers, r_max, ghost_cut, neighbor->skin, need, have, std::ceil(need * 100) / 100);
    neighbor->add_request(this, NeighConst::REQ_FULL | NeighConst::REQ_GHOST);
  } else {
    neighbor->add_request(this, NeighConst::REQ_FULL);
  }
  at::set_num_threads(nthreads);
}

double PairAtomtwin::init_one(int i, int j)
{
  // neighbour pairs up to r_max (+ skin); ghost atoms' neighbours too for message passing
  cutghost[i][j] = cutghost[j][i] = r_max;
  return r_max;
}

void PairAtomtwin::compute(int eflag, int vflag)
{
  ev_init(eflag, vflag);
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();

  double **x = atom->x;
  double **f = atom->f;
  int *type = atom->type;
  const int nlocal = atom->nlocal;
  const int ntotal = nlocal + atom->nghost;
  const int ncentre = list->inum + (message_passing ? list->gnum : 0);
  int *ilist = list->ilist;
  int *numneigh = list->numneigh;
  int **firstneigh = list->firstneigh;
  const double cutsq_model = r_max * r_max;

  // Graph nodes: one per atom, not per copy.  A ghost that is a periodic image of a local atom
  // of this rank is that local atom's node; the several ghost copies of an atom owned by
  // another rank share one node, centred (for message passing) on its copy nearest to this
  // rank's sub-domain.  Edge vectors stay those of the copies, and forces go onto the copies
  // (LAMMPS reverse-communicates them to the owner, also from a rank to itself).  On one rank
  // the graph is therefore exactly the periodic graph of our Python engine: no ghost atom is
  // evaluated, whatever the ghost shell.  Across ranks only atoms owned elsewhere are added.
  //
  // Message passing: layer L needs layer L-1 features of the local atoms' neighbours only,
  // layer L-1 those of their neighbours, and so on.  Ghost nodes get the hop count c of a
  // breadth-first search along edges (r < r_max) from the local atoms, and only nodes with
  // c <= L - 1 centre edges: layer k uses centres with c <= L - k.  This is the exact set
  // (a ghost just inside the shell but with no local atom within r_max centres nothing).
  // Of the copies of an atom owned elsewhere, the one nearest the sub-domain (smallest
  // depth) is its node's centre: its neighbours are surely within the ghost shell.
  tagint *tag = atom->tag;
  const bool tri = domain->triclinic;
  const double *hi = domain->h_inv;
  const double dlam[3] = {std::sqrt(hi[0] * hi[0] + hi[5] * hi[5] + hi[4] * hi[4]),
                          std::sqrt(hi[1] * hi[1] + hi[3] * hi[3]), std::fabs(hi[2])};
  auto depth_of = [&](int i) -> double {
    if (!tri) {
      double d2 = 0.0;
      for (int k = 0; k < 3; k++) {
        double d = std::max({domain->sublo[k] - x[i][k], 0.0, x[i][k] - domain->subhi[k]});
        d2 += d * d;
      }
      return std::sqrt(d2);
    }
    double lam[3], out = 0.0;
    domain->x2lamda(x[i], lam);
    for (int k = 0; k < 3; k++)    // distance to the slab k of the sub-domain
      out = std::max(out, std::max({domain->sublo_lamda[k] - lam[k], 0.0,
                                    lam[k] - domain->subhi_lamda[k]}) / dlam[k]);
    return out;
  };
  by_tag.clear();
  by_tag.reserve(2 * (size_t) ntotal + 16);
  node_of.resize(ntotal);
  rep.resize(ntotal);
  depth.resize(ntotal);
  for (int i = 0; i < nlocal; i++) {
    by_tag.emplace((long long) tag[i], i);
    node_of[i] = i;
    rep[i] = i;
    depth[i] = 0.0;
  }
  for (int g = nlocal; g < ntotal; g++) {
    depth[g] = message_passing ? depth_of(g) : 0.0;
    auto it = by_tag.emplace((long long) tag[g], g);
    if (!it.second && it.first->second >= nlocal && depth[g] < depth[it.first->second])
      it.first->second = g;    // a nearer copy of an atom owned elsewhere
  }
  int nnode = nlocal;
  for (int g = nlocal; g < ntotal; g++) {
    const int r = by_tag[(long long) tag[g]];
    rep[g] = r;
    if (r == g) node_of[g] = nnode++;
  }
  for (int g = nlocal; g < ntotal; g++) node_of[g] = node_of[rep[g]];

  // node attributes: the type of its atom, weight 1 for local atoms; then two dummy nodes
  types.resize(nnode + 2);
  weight.resize(nnode + 2);
  for (int i = 0; i < ntotal; i++) {
    if (rep[i] != i) continue;
    int k = type_map[type[i]];
    if (k < 0)
      error->one(FLERR, "pair_style atomtwin: atom type {} is mapped to NULL but is present. "
                 "Fix: name its species in pair_coeff", type[i]);
    types[node_of[i]] = k;
    weight[node_of[i]] = i < nlocal ? 1.0 : 0.0;
  }
  types[nnode] = types[nnode + 1] = 0;
  weight[nnode] = weight[nnode + 1] = 0.0;

  // Edges i -> j with r < r_max, ordered by the class of their centre: local atoms (class
  // 0), then the two dummy edges (two weight-0 dummy nodes > r_max apart: every call has >= 2
  // nodes and edges, also on an empty rank), then (message passing) ghost nodes by hop count
  // c = 1 .. L - 1.  Layer k (2..L) of the model uses the edges of class <= L - k only
  // (package input k-1, a tensor whose length is that edge count).
  vec.clear();
  centre.clear();
  neigh.clear();
  auto add_edges = [&](int i) {
    const int *jlist = firstneigh[i];
    const int jnum = numneigh[i];
    for (int jj = 0; jj < jnum; jj++) {
      const int j = jlist[jj] & NEIGHMASK;
      const double dx = x[j][0] - x[i][0], dy = x[j][1] - x[i][1], dz = x[j][2] - x[i][2];
      if (dx * dx + dy * dy + dz * dz >= cutsq_model) continue;
      vec.push_back(dx);
      vec.push_back(dy);
      vec.push_back(dz);
      centre.push_back(i);
      neigh.push_back(j);
    }
  };
  const int nextra = message_passing ? num_layers - 1 : 0;
  hop.assign(message_passing ? nnode : 0, num_layers);
  for (int i = 0; i < (message_passing ? nlocal : 0); i++) hop[i] = 0;
  auto mark = [&](size_t from, int c) {    // neighbours of edges [from, end) get hop <= c
    for (size_t e = from; e < centre.size(); e++) {
      int &h = hop[node_of[neigh[e]]];
      if (h > c) h = c;
    }
  };
  for (int ii = 0; ii < list->inum; ii++) add_edges(ilist[ii]);
  if (message_passing) mark(0, 1);
  const double far = 2.0 * r_max;
  const double dummy[6] = {far, 0.0, 0.0, -far, 0.0, 0.0};
  vec.insert(vec.end(), dummy, dummy + 6);
  centre.push_back(-1);
  centre.push_back(-1);
  neigh.push_back(-1);
  neigh.push_back(-1);
  std::vector<int64_t> upto(num_layers, (int64_t) centre.size());    // edges of class <= c
  for (int c = 1; c <= nextra; c++) {
    const size_t from = centre.size();
    for (int ii = list->inum; ii < ncentre; ii++) {
      const int i = ilist[ii];
      if (rep[i] == i && hop[node_of[i]] == c) add_edges(i);
    }
    if (c < nextra) mark(from, c + 1);
    upto[c] = (int64_t) centre.size();
  }
  const int64_t E = (int64_t) centre.size(), N = nnode + 2;
  index.resize(2 * E);
  int ndummy = 0;
  for (int64_t e = 0; e < E; e++) {
    if (centre[e] < 0) {    // dummy edges: node nnode -> nnode + 1 and back
      index[e] = nnode + ndummy;
      index[E + e] = nnode + 1 - ndummy;
      ndummy++;
      continue;
    }
    index[e] = node_of[centre[e]];
    index[E + e] = node_of[neigh[e]];
  }

  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  at::Tensor t_vec = torch::from_blob(vec.data(), {E, 3}, f64);
  at::Tensor t_w = torch::from_blob(weight.data(), {N}, f64);
  at::Tensor t_types = torch::from_blob(types.data(), {N}, i64);
  at::Tensor t_index = torch::from_blob(index.data(), {2, E}, i64);
  if (single_precision) {
    t_vec = t_vec.to(torch::kFloat32);
    t_w = t_w.to(torch::kFloat32);
  }
  if (on_cuda) {
    t_vec = t_vec.to(torch::kCUDA);
    t_w = t_w.to(torch::kCUDA);
    t_types = t_types.to(torch::kCUDA);
    t_index = t_index.to(torch::kCUDA);
  }
  std::vector<at::Tensor> inputs = {t_vec, t_types, t_index, t_w};
  auto u8 = torch::TensorOptions().dtype(torch::kUInt8).device(on_cuda ? torch::kCUDA : torch::kCPU);
  for (int k = 2; k <= nextra + 1; k++) inputs.push_back(torch::empty({upto[num_layers - k]}, u8));
  std::vector<at::Tensor> out;
  const auto t1 = clock::now();
  try {
    out = loader->run(inputs);
  } catch (const std::exception &e) {
    error->one(FLERR, std::string("pair_style atomtwin: the package failed: ") + e.what());
  }
  at::Tensor atom_e = out[1].to(torch::kCPU, torch::kFloat64).contiguous();
  at::Tensor grad = out[2].to(torch::kCPU, torch::kFloat64).contiguous();
  const double *ae = atom_e.data_ptr<double>();
  const double *g = grad.data_ptr<double>();
  const auto t2 = clock::now();

  for (int64_t e = 0; e < E; e++) {
    const int i = centre[e], j = neigh[e];
    if (i < 0) continue;    // dummy
    const double gx = g[3 * e], gy = g[3 * e + 1], gz = g[3 * e + 2];
    f[i][0] += gx;
    f[i][1] += gy;
    f[i][2] += gz;
    f[j][0] -= gx;
    f[j][1] -= gy;
    f[j][2] -= gz;
    if (vflag_either) {
      const double vx = vec[3 * e], vy = vec[3 * e + 1], vz = vec[3 * e + 2];
      const double w[6] = {-vx * gx, -vy * gy, -vz * gz, -vx * gy, -vx * gz, -vy * gz};
      if (vflag_global)
        for (int k = 0; k < 6; k++) virial[k] += w[k];
      if (vflag_atom)
        for (int k = 0; k < 6; k++) {
          vatom[i][k] += 0.5 * w[k];
          vatom[j][k] += 0.5 * w[k];
        }
    }
  }
  if (eflag_either) {
    for (int i = 0; i < nlocal; i++) {    // local atoms are nodes 0 .. nlocal-1
      if (eflag_global) eng_vdwl += ae[i];
      if (eflag_atom) eatom[i] += ae[i];
    }
  }
  if (timing) {
    const auto t3 = clock::now();
    t_graph += std::chrono::duration<double>(t1 - t0).count();
    t_model += std::chrono::duration<double>(t2 - t1).count();
    t_tally += std::chrono::duration<double>(t3 - t2).count();
    calls++;
    sum_nodes += nnode;
    sum_local += nlocal;
    sum_edges_first += E;
    sum_edges_last += upto[0];
  }
}

double PairAtomtwin::memory_usage()
{
  double bytes = Pair::memory_usage();
  bytes += (double) vec.capacity() * sizeof(double) + weight.capacity() * sizeof(double);
  bytes += (double) index.capacity() * sizeof(int64_t) + types.capacity() * sizeof(int64_t);
  bytes += (double) (centre.capacity() + neigh.capacity()) * sizeof(int);
  bytes += (double) (node_of.capacity() + rep.capacity()) * sizeof(int) +
      depth.capacity() * sizeof(double) + hop.capacity() * sizeof(int) + by_tag.size() * 32.0;
  return bytes;
}
