"""The data the course reconstructs.

``phantoms``  Shepp-Logan, dival's random ellipses, real CT slices (lessons 01, 03, 12)
``phantoms_3d``  the 3D Shepp-Logan phantom, random ellipsoids, the Defrise discs and
              exact (sub-pixel averaged) cone-beam projections of ellipsoids (lesson 13)
``noise``     Gaussian and low-dose Poisson noise (lessons 02 and 06)
``setting``   ``SparseViewSetting``: the shared experiment of the learned lessons, with
              data simulated on a finer grid than any method reconstructs on (lesson 03)
"""
