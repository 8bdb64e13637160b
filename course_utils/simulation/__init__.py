"""The data the course reconstructs.

``phantoms``  Shepp-Logan, dival's random ellipses, a real CT slice (lessons 01 and 03)
``noise``     Gaussian and low-dose Poisson noise (lessons 02 and 06)
``setting``   ``SparseViewSetting``: the shared experiment of the learned lessons, with
              data simulated on a finer grid than any method reconstructs on (lesson 03)
"""
