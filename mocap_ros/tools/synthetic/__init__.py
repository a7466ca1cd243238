"""Synthetic FrankMocap assets in the real file formats. NOT real weights, NOT a body model.

The licensed SMPL files and FrankMocap's checkpoint never exist on test machines, yet the
loaders must be exercised on the real formats. Everything here is deterministic from a seed:

* ``write_smpl_pkl``: the original SMPL ``.pkl`` format, byte-level like the Python 2
  ``cPickle`` protocol-2 files SMPL's ``save_model`` wrote: py2 ``str`` opcodes (so loading
  needs ``encoding='latin1'``), ``shapedirs`` as a ``chumpy.ch.Ch`` (GLOBAL ``chumpy.ch Ch`` +
  NEWOBJ + BUILD of its ``__dict__``), ``J_regressor``/``J_regressor_prior`` as
  ``scipy.sparse.csc csc_matrix``, numpy arrays as numpy 1.x ``numpy.core.multiarray
  _reconstruct``. Written by a small opcode writer below: nothing needs chumpy or scipy and no
  module is injected into ``sys.modules``.
* The model content is a procedural body on ``skeleton.REST_JOINTS_APPROX``: exactly 6890
  vertices and 13776 faces (smplx picks extra joints by vertex index, and 13776 = 2 * 6890 - 4
  is what a closed genus-0 surface with 6890 vertices has). It is one closed capsule (head)
  plus thick-walled tubes (topological tori, F = 2V) around the bones, so every edge has two
  faces. Every joint is the centre of a symmetric vertex ring, so ``J_regressor @ v_template``
  equals the rest joints to rounding. The 21 vertices smplx reads as nose/eyes/ears/toes/heels/
  fingertips sit where those landmarks would be.
* ``write_hmr_checkpoint``: ``mocap_ros.estimation.hmr.network.HMR`` with seeded weights in the
  SPIN/EFT saver's layout, written by ``torch.save`` in the pre-1.6 (non-zip) format with
  numpy 1.x global names,
  as a May 2020 file (torch < 1.6, numpy 1.x) is.

Modules: pickle2 (the protocol-2 writer), body (the procedural mesh), smpl (SMPL files,
mean parameters), hmr (the checkpoint), files (the whole FrankMocap layout).
"""
